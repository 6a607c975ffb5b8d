"""The Vagrant lab: three CentOS 7 VMs (proxy, web1, web2) from the repo's Vagrantfile.

`invoke lab.up --provider vagrant` calls `up()`: it runs `vagrant up`, reads
`vagrant ssh-config`, and writes `inventory/vagrant.yml` for the project to
provision. The Vagrantfile has no provisioners; provisioning is the project's job.

The conversion from `vagrant ssh-config` output to an inventory is a pure
function (`inventory_from_ssh_config`), tested on real captured outputs
(tests/fixtures/vagrant/, sources in tests/fixtures/SOURCES.md), since no VM
can boot where the tests run.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from .system import LabError

# Debian packages the project's `invoke test` task installs before the tests,
# so that the `vagrant validate` test runs instead of skipping.
# (Debian 12's `vagrant` 2.3.4 validates a Vagrantfile offline, with no box present.)
TEST_APT_PACKAGES = ["vagrant"]

REPO_ROOT = Path(__file__).resolve().parents[2]
INVENTORY_NAME = "inventory/vagrant.yml"
HEADER = (
    "# Written by `invoke lab.up --provider vagrant` from `vagrant ssh-config`.\n"
    "# Regenerated on every run: edit the Vagrantfile or provision/lab/vagrant.py instead.\n"
)

# Private network addresses, as set in the Vagrantfile (keep the two in step).
# SSH goes through the address/port that `vagrant ssh-config` reports (with
# VirtualBox, a NAT port forward on 127.0.0.1:2222, 2200, 2201...). The proxy
# reaches the backends over the private network, so each host also carries
# `private_address`, which backends bind to and the proxy's BalancerMembers use.
#
# | machine | private_address | group    | apps                 |
# |---------|-----------------|----------|----------------------|
# | proxy   | 192.168.56.10   | proxies  | -                    |
# | web1    | 192.168.56.11   | backends | hello on 8080        |
# | web2    | 192.168.56.12   | backends | howdy on 8081        |
PRIVATE_ADDRESSES = {
    "proxy": "192.168.56.10",
    "web1": "192.168.56.11",
    "web2": "192.168.56.12",
}
GROUPS = {
    "proxies": ["proxy"],
    "backends": ["web1", "web2"],
}
APPS = {
    "web1": [{"name": "hello", "port": 8080, "message": "Hello world!"}],
    "web2": [{"name": "howdy", "port": 8081, "message": "Howdy world!"}],
}


# "Keyword value" or "Keyword=value", as ssh_config(5) allows.
_DIRECTIVE = re.compile(r"([A-Za-z][A-Za-z0-9]*)(?:\s*=\s*|\s+|$)(.*)$")


@dataclass
class ValidateResult:
    ok: bool
    returncode: int
    output: str


def parse_ssh_config(text: str) -> dict[str, dict[str, list[str]]]:
    """Parse ssh_config text (as `vagrant ssh-config` prints it) into {host: {keyword: [values]}}.

    Keywords are lower-cased (ssh_config keywords are case-insensitive); every value is
    kept, in order, because a keyword can repeat (Vagrant 2.4 prints two IdentityFile
    lines when it uses its insecure ed25519 and rsa keys). Surrounding double quotes are
    removed (Vagrant quotes key paths containing spaces). Text before the first `Host`
    line (for example a "new version available" notice) is ignored.
    """
    hosts: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _DIRECTIVE.match(line)
        if current is None and not (match and match.group(1).lower() == "host"):
            continue
        if not match:
            raise ValueError(f"line {lineno}: not an ssh_config line: {line!r}")
        keyword, value = match.group(1).lower(), match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if keyword == "host":
            names = shlex.split(value)
            if len(names) != 1:
                raise ValueError(f"line {lineno}: expected one name after Host, got {value!r}")
            if names[0] in hosts:
                raise ValueError(f"line {lineno}: host {names[0]!r} appears twice")
            current = hosts[names[0]] = {}
        elif current is not None:
            if not value:
                raise ValueError(f"line {lineno}: {keyword!r} has no value")
            current.setdefault(keyword, []).append(value)
    return hosts


def _pick_key(name: str, keys: list[str]) -> str:
    # Ansible's ansible_ssh_private_key_file holds one key. With the default
    # config.ssh.insert_key = true there is one per-machine key; if several are
    # listed, prefer the machine's own .vagrant/machines/<name>/ key, else the
    # first (the one ssh tries first).
    own = [k for k in keys if f"/machines/{name}/" in k.replace("\\", "/")]
    return (own or keys)[0]


def inventory_from_ssh_config(text: str, names: dict[str, str] | None = None) -> dict:
    """Turn `vagrant ssh-config` output into an Ansible YAML inventory (as a dict).

    `names` maps a Vagrant machine name to a lab machine name; by default they are
    the same (proxy, web1, web2). Raises ValueError if a lab machine is missing, a
    machine is not in PRIVATE_ADDRESSES, or an entry lacks HostName/Port/User/IdentityFile.
    """
    names = names or {}
    parsed = parse_ssh_config(text)
    entries: dict[str, tuple[str, dict[str, list[str]]]] = {}   # lab name -> (vagrant name, options)
    for vagrant_name, options in parsed.items():
        lab_name = names.get(vagrant_name, vagrant_name)
        if lab_name not in PRIVATE_ADDRESSES:
            raise ValueError(f"machine {vagrant_name!r} is in `vagrant ssh-config` but not in "
                             f"PRIVATE_ADDRESSES ({', '.join(PRIVATE_ADDRESSES)}): "
                             "update the table in provision/lab/vagrant.py to match the Vagrantfile")
        if lab_name in entries:
            raise ValueError(f"machines {entries[lab_name][0]!r} and {vagrant_name!r} both map to {lab_name!r}")
        entries[lab_name] = (vagrant_name, options)
    missing = [n for n in PRIVATE_ADDRESSES if n not in entries]
    if missing:
        raise ValueError(f"`vagrant ssh-config` has no entry for {', '.join(missing)} "
                         f"(found: {', '.join(parsed) or 'nothing'}); is every machine up?")

    def host_vars(lab_name: str) -> dict:
        vagrant_name, options = entries[lab_name]
        need = [k for k in ("hostname", "port", "user", "identityfile") if k not in options]
        if need:
            raise ValueError(f"`vagrant ssh-config` entry for {lab_name!r} lacks {', '.join(need)}")
        port = options["port"][0]
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"`vagrant ssh-config` entry for {lab_name!r}: bad Port {port!r}")
        result = {
            "ansible_host": options["hostname"][0],
            "ansible_port": int(port),
            "ansible_user": options["user"][0],
            "ansible_ssh_private_key_file": _pick_key(vagrant_name, options["identityfile"]),
            "private_address": PRIVATE_ADDRESSES[lab_name],
        }
        if lab_name in APPS:
            result["apps"] = [dict(app) for app in APPS[lab_name]]
        return result

    return {
        "all": {
            "vars": {
                # Explicit opt-in, for this Vagrant inventory only. `vagrant ssh-config`
                # itself says `StrictHostKeyChecking no` and `UserKnownHostsFile /dev/null`:
                # Vagrant never records the guests' host keys, and they change on every
                # `vagrant destroy/up`, so there is no known_hosts to check against. We do
                # not copy "no checking"; instead the first key seen on a host is accepted
                # and recorded (trust on first use), and a later change is still refused.
                # The nspawn lab writes a real known_hosts and does not set this.
                "accept_new_host_keys": True,
            },
            "children": {
                group: {"hosts": {name: host_vars(name) for name in members}}
                for group, members in GROUPS.items()
            },
        }
    }


def render_inventory(inventory: dict) -> str:
    """The inventory as YAML text, with a header saying where it came from."""
    return HEADER + yaml.safe_dump(inventory, sort_keys=False, default_flow_style=False,
                                   allow_unicode=True)


def _vagrant() -> str:
    path = shutil.which("vagrant")
    if not path:
        raise LabError("`vagrant` is not installed (see https://developer.hashicorp.com/vagrant/install; "
                         "on Debian/Ubuntu: apt-get install vagrant), or use the default nspawn lab")
    return path


def validate(path: str | os.PathLike) -> ValidateResult:
    """Run `vagrant validate` on a Vagrantfile (or the folder holding one).

    Works offline with no box present. Vagrant's state folder goes to a temporary
    directory, so validating leaves no `.vagrant/` behind.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    vagrant = _vagrant()
    with tempfile.TemporaryDirectory(prefix="vagrant-validate-") as state:
        env = {**os.environ, "VAGRANT_DOTFILE_PATH": str(Path(state) / "dot"),
               "VAGRANT_CHECKPOINT_DISABLE": "1", "VAGRANT_CWD": str(folder)}
        if not path.is_dir():
            env["VAGRANT_VAGRANTFILE"] = path.name
        # --ignore-provider: validate offline even where no VM provider is installed (without it,
        # vagrant 2.3.4 exits 1 with "No usable default provider" whatever the Vagrantfile says).
        proc = subprocess.run([vagrant, "validate", "--ignore-provider"], cwd=folder, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True)
    return ValidateResult(ok=proc.returncode == 0, returncode=proc.returncode,
                          output=(proc.stdout + proc.stderr).strip())


# What vagrant says when neither VirtualBox nor a provider plugin is usable (vagrant 2.3.4).
NO_PROVIDER = "No usable default provider"


@dataclass
class Echoed:
    returncode: int
    text: str


def _run_echoed(argv: list[str], log, **kwargs) -> Echoed:
    """Run a command, passing each output line to `log` as it comes, and keep the text."""
    lines = []
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **kwargs) as proc:
        for line in proc.stdout:
            lines.append(line)
            log(line.rstrip("\n"))
    return Echoed(proc.returncode, "".join(lines))


def up(log=print, root: str | os.PathLike | None = None) -> Path:
    """`vagrant up`, then write inventory/vagrant.yml from `vagrant ssh-config`. Returns its path."""
    root = Path(root) if root else REPO_ROOT
    vagrant = _vagrant()
    env = {**os.environ, "VAGRANT_CHECKPOINT_DISABLE": "1"}
    log(f"vagrant up (in {root}); the first run downloads the centos/7 box")
    output = _run_echoed([vagrant, "up"], cwd=root, env=env, log=log)
    if output.returncode != 0:
        if NO_PROVIDER in output.text:
            raise LabError("vagrant found no VM provider: install VirtualBox, or libvirt and the "
                             "vagrant-libvirt plugin, or use the default lab (invoke lab.up)")
        raise LabError(f"`vagrant up` failed ({output.returncode}); see its output above")
    proc = subprocess.run([vagrant, "ssh-config"], cwd=root, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise LabError(f"`vagrant ssh-config` failed ({proc.returncode}): {proc.stderr.strip()}")
    try:
        inventory = inventory_from_ssh_config(proc.stdout)
    except ValueError as e:
        raise LabError(f"cannot read `vagrant ssh-config`: {e}") from None
    target = root / INVENTORY_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_inventory(inventory))
    log(f"wrote {target}")
    return target
