"""Vagrant itself: its `vagrant ssh-config` output, `vagrant validate`, and running it.

The VM lab (provision/lab/vm/) runs `vagrant up` and reads `vagrant ssh-config`
to learn how to log in to each machine. Reading that output is a pure
function (`logins`), tested on real captured outputs (tests/fixtures/vagrant/,
sources in tests/fixtures/SOURCES.md).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from .system import LabError

# Debian packages the project's `invoke test` task installs before the tests, so that the
# Vagrantfile tests run instead of skipping (Debian 12's `vagrant` 2.3.4 validates a Vagrantfile
# offline, with no box present, and brings Ruby, which renders the Vagrantfile's machine list).
TEST_APT_PACKAGES = ["vagrant"]

# "Keyword value" or "Keyword=value", as ssh_config(5) allows.
_DIRECTIVE = re.compile(r"([A-Za-z][A-Za-z0-9]*)(?:\s*=\s*|\s+|$)(.*)$")


@dataclass
class ValidateResult:
    """What `vagrant validate` said."""
    ok: bool
    returncode: int
    output: str


@dataclass(frozen=True)
class Login:
    """How to log in to one machine, as `vagrant ssh-config` says."""
    hostname: str
    port: int
    user: str
    key: str


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
    # ssh_config's IdentityFile can repeat; we write one. With the default config.ssh.insert_key =
    # true there is one per-machine key; if several are listed, prefer the machine's own
    # .vagrant/machines/<name>/ key, else the first (the one ssh tries first).
    own = [k for k in keys if f"/machines/{name}/" in k.replace("\\", "/")]
    return (own or keys)[0]


def logins(text: str, wanted: list[str], names: dict[str, str] | None = None) -> dict[str, Login]:
    """Each wanted machine's login from `vagrant ssh-config` output.

    `names` maps a Vagrant machine name to a lab machine name; by default they are the same.
    Raises ValueError if a wanted machine is missing, a machine is not wanted, two map to one
    name, or an entry lacks HostName/Port/User/IdentityFile."""
    names = names or {}
    parsed = parse_ssh_config(text)
    entries: dict[str, tuple[str, dict[str, list[str]]]] = {}   # lab name -> (vagrant name, options)
    for vagrant_name, options in parsed.items():
        lab_name = names.get(vagrant_name, vagrant_name)
        if lab_name not in wanted:
            raise ValueError(f"machine {vagrant_name!r} is in `vagrant ssh-config` but not in the lab "
                             f"({', '.join(wanted)}): keep the Vagrantfile and provision/lab/vm/layout.py in step")
        if lab_name in entries:
            raise ValueError(f"machines {entries[lab_name][0]!r} and {vagrant_name!r} both map to {lab_name!r}")
        entries[lab_name] = (vagrant_name, options)
    missing = [n for n in wanted if n not in entries]
    if missing:
        raise ValueError(f"`vagrant ssh-config` has no entry for {', '.join(missing)} "
                         f"(found: {', '.join(parsed) or 'nothing'}); is every machine up?")

    def login(lab_name: str) -> Login:
        vagrant_name, options = entries[lab_name]
        need = [k for k in ("hostname", "port", "user", "identityfile") if k not in options]
        if need:
            raise ValueError(f"`vagrant ssh-config` entry for {lab_name!r} lacks {', '.join(need)}")
        port = options["port"][0]
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"`vagrant ssh-config` entry for {lab_name!r}: bad Port {port!r}")
        return Login(options["hostname"][0], int(port), options["user"][0],
                     _pick_key(vagrant_name, options["identityfile"]))

    return {name: login(name) for name in wanted}


# Vagrant's wrapping around the error itself, when machines come up in parallel.
_VAGRANT_PREAMBLE = ("An error occurred while executing multiple actions in parallel",
                     "An error occurred while executing the action on the")


def error_line(output: str) -> str:
    """Vagrant's error as one line: the first paragraph after its progress lines (`==> machine: ...`)
    that is not its preamble about parallel actions; else the last line."""
    lines = output.splitlines()
    last_progress = max((i for i, line in enumerate(lines) if line.startswith(("==>", "    "))), default=-1)
    paragraphs, current = [], []
    for line in lines[last_progress + 1:] + [""]:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    for paragraph in paragraphs:
        if not paragraph.startswith(_VAGRANT_PREAMBLE):
            return paragraph
    rest = [line.strip() for line in lines if line.strip()]
    return rest[-1] if rest else "no output"


def binary() -> str:
    path = shutil.which("vagrant")
    if not path:
        raise LabError("`vagrant` is not installed (see https://developer.hashicorp.com/vagrant/install; "
                       "on Debian/Ubuntu: apt-get install vagrant)")
    return path


def validate(path: str | os.PathLike) -> ValidateResult:
    """Run `vagrant validate` on a Vagrantfile (or the folder holding one).

    Works offline with no box present. Vagrant's state folder goes to a temporary
    directory, so validating leaves no `.vagrant/` behind.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    vagrant = binary()
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


def run_echoed(argv: list[str], log, timeout: float | None = None, **kwargs) -> tuple[int, str]:
    """Run a command, passing each output line to `log` as it comes; (exit code, whole output).
    Past `timeout` seconds it is killed and TimeoutExpired raised."""
    lines = []
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **kwargs) as proc:
        fired = []
        timer = threading.Timer(timeout, lambda: (fired.append(True), proc.kill())) if timeout else None
        if timer:
            timer.start()
        try:
            for line in proc.stdout:
                lines.append(line)
                log(line.rstrip("\n"))
            proc.wait()
        finally:
            if timer:
                timer.cancel()
    if fired:
        raise subprocess.TimeoutExpired(argv, timeout, output="".join(lines))
    return proc.returncode, "".join(lines)
