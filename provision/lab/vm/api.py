"""The VM lab's API: up and down, each stage timed.

`up` installs what it needs from Debian's archive, starts libvirt if nothing
runs it, builds (or takes from the cache) the lab's box, probes KVM, makes the
isolated network, the storage pool and the apt proxy, runs `vagrant up`, and
writes inventory/vagrant.yml, .lab/vagrant/ssh_config and known_hosts from
`vagrant ssh-config` and the host keys the guests print on their consoles.
`down` destroys the VMs, the network, the pool's volumes and the pool, and
stops the daemons and proxy it started; the box stays cached.
"""
from __future__ import annotations

import dataclasses
import fcntl
import os
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .. import aptproxy, reach, vagrant
from ..system import LabError, cache_dir, check_machine, ensure_packages, repo_root
from . import box, layout, libvirt

INVENTORY = "inventory/vagrant.yml"
BOOT_TIMEOUT = 600          # seconds for `vagrant up` of all three under emulation
READY_TIMEOUT = 300


@dataclass
class VmLabInfo:
    """The VM lab as it runs: its hosts and the files to reach them."""
    hosts: dict[str, str]               # name -> address
    inventory: Path
    ssh_config: Path
    known_hosts: Path
    driver: str                         # libvirt domain type: kvm or qemu
    stages: dict[str, float] = field(default_factory=dict)     # stage -> seconds


class Stages:
    """Times each stage of a run and logs it as it ends."""

    def __init__(self, log):
        self.log = log
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        start = time.monotonic()
        yield
        self.seconds[name] = time.monotonic() - start
        self.log(f"[{name}: {self.seconds[name]:.1f} s]")

    def summary(self) -> str:
        return ", ".join(f"{name} {s:.0f} s" for name, s in self.seconds.items())


def state_dir(cache: Path) -> Path:
    return box.folder(cache) / "libvirt"


def console_dir(cache: Path) -> Path:
    return box.folder(cache) / "consoles"


def pool_dir(cache: Path) -> Path:
    return box.folder(cache) / "pool"


def apt_proxy(cache: Path) -> aptproxy.Proxy:
    """The VMs' apt proxy: on the VM network's bridge only (the nspawn lab's holds loopback)."""
    return aptproxy.Proxy(box.folder(cache) / "apt-cacher-ng", layout.BRIDGE, layout.BRIDGE_ADDRESS,
                          layout.BRIDGE_ADDRESS)


def client_dir() -> Path:
    return repo_root() / ".lab" / "vagrant"


@contextmanager
def _locked(cache: Path):
    """One VM lab change at a time on this machine (the nspawn lab's lock is not needed)."""
    top = box.folder(cache)
    top.mkdir(parents=True, exist_ok=True)
    with open(top / "lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def up(log=print) -> VmLabInfo:
    """Bring the VM lab up (or check it is) and write its inventory; logs each stage's time."""
    check_machine()
    cache = cache_dir()
    stages = Stages(log)
    with stages("install packages"):
        ensure_packages(log, libvirt.PACKAGES, "the VM lab needs")
    with _locked(cache):
        with stages("libvirt daemon"):
            libvirt.grant_kvm_group(state_dir(cache), log)
            libvirt.ensure_daemon(state_dir(cache), log)
        with stages("box"):
            built = _box(cache, log)
        with stages("KVM probe"):
            driver = "kvm" if libvirt.kvm_usable(built.kernel, state_dir(cache), log) else "qemu"
            env = _vagrant_env(cache, driver)
        machines = layout.plan()
        with stages("network, pool, apt proxy"):
            _clear_leftovers(machines, log)
            running = set(libvirt.lab_domains())
            if len(running) < len(machines):
                libvirt.check_room(len(machines) - len(running), pool_dir(cache))
            libvirt.ensure_pool(pool_dir(cache))
            libvirt.ensure_network(layout.network_xml(machines))
            aptproxy.ensure(apt_proxy(cache))
            console_dir(cache).mkdir(parents=True, exist_ok=True)
        with stages("vagrant up"):
            _vagrant_up(env, log)
        with stages("inventory"):
            info = _write_client_files(machines, env, cache, driver)
        with stages("ssh ready"):
            _wait_ready(info)
    info.stages = stages.seconds
    log(f"VM lab stages: {stages.summary()}")
    return info


def box_only(log=print) -> box.Box:
    """Build the box when its recipe changed, and add it to Vagrant."""
    check_machine()
    ensure_packages(log, libvirt.PACKAGES, "the VM lab needs")
    cache = cache_dir()
    with _locked(cache):
        return _box(cache, log)


def _box(cache: Path, log) -> box.Box:
    built = box.ensure(cache, log)
    if box.add(built, _vagrant_env(cache), log) and libvirt.answers():
        # A volume of an older build left in the pool would be used instead of the new box.
        libvirt.remove_volumes(lambda name: "_vagrant_box_image_" in name)
    return built


def _vagrant_env(cache: Path, driver: str = "qemu") -> dict[str, str]:
    return {**os.environ, **layout.vagrant_env(box.vagrant_home(cache), driver, console_dir(cache))}


def down(log=print) -> None:
    """Remove the VMs, the network, the pool's volumes and the pool; stop what the lab started."""
    check_machine()
    cache = cache_dir()
    with _locked(cache):
        state = state_dir(cache)
        if not any(Path("/usr/bin", n).exists() for n in ("virsh", "vagrant")):
            log("No libvirt or vagrant here: nothing to remove")
            return
        libvirt.ensure_daemon(state, log)
        env = _vagrant_env(cache)
        if (repo_root() / ".vagrant").is_dir():
            log("vagrant destroy -f")
            code, output = vagrant.run_echoed([vagrant.binary(), "destroy", "-f"], log=log, cwd=repo_root(), env=env)
            if code != 0:
                log(f"vagrant destroy exited {code}; removing the lab's domains with virsh")
        for name in libvirt.lab_domains():
            log(f"Removing domain {name}")
            libvirt.remove_domain(name)
        libvirt.remove_pool()
        libvirt.remove_network()
        aptproxy.stop(apt_proxy(cache))
        libvirt.stop_daemon(state)
        libvirt.restore_kvm_device(state)
        for path in (client_dir() / "ssh_config", client_dir() / "known_hosts"):
            path.unlink(missing_ok=True)
    log("VM lab removed (the box stays in the cache)")


# --- helpers ----------------------------------------------------------------------------------------

def _clear_leftovers(machines: list[layout.Machine], log) -> None:
    """Domains of the lab's names that this checkout's Vagrant does not know (another checkout's,
    or an earlier run's whose .vagrant/ is gone) would block `vagrant up`, and a disk whose domain
    is gone would be refused as taken: remove them."""
    for m in machines:
        id_file = repo_root() / ".vagrant" / "machines" / m.name / "libvirt" / "id"
        known = id_file.read_text().strip() if id_file.exists() else None
        uuid = libvirt.domain_uuid(m.domain)
        if uuid and uuid != known:
            log(f"Removing {m.domain}, left behind by an earlier lab")
            libvirt.remove_domain(m.domain)
            uuid = None
        if not uuid:
            libvirt.remove_volumes(lambda vol, m=m: vol.startswith(m.domain + "."))


def _vagrant_up(env: dict[str, str], log) -> None:
    argv = [vagrant.binary(), "up", "--provider", "libvirt"]
    start = time.monotonic()

    def echo(line: str) -> None:
        if "Progress:" not in line:     # the box upload's percentages
            log(f"{time.monotonic() - start:4.0f} s {line}")
    try:
        code, output = vagrant.run_echoed(argv, log=echo, cwd=repo_root(), env=env, timeout=BOOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise LabError(f"`vagrant up` did not finish within {BOOT_TIMEOUT} s") from None
    if code != 0:
        raise LabError(f"`vagrant up` failed: {vagrant.error_line(output)}")


def _write_client_files(machines: list[layout.Machine], env: dict[str, str], cache: Path, driver: str) -> VmLabInfo:
    proc = subprocess.run([vagrant.binary(), "ssh-config"], cwd=repo_root(), env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=300)
    if proc.returncode != 0:
        raise LabError(f"`vagrant ssh-config` failed: {vagrant.error_line(proc.stderr or proc.stdout)}")
    try:
        logins = vagrant.logins(proc.stdout, [m.name for m in machines])
    except ValueError as e:
        raise LabError(f"cannot read `vagrant ssh-config`: {e}") from None
    users = {login.user for login in logins.values()}
    keys = {login.key for login in logins.values()}
    ports = {login.port for login in logins.values()}
    if len(users) != 1 or len(keys) != 1 or ports != {22}:
        raise LabError(f"`vagrant ssh-config` gives several users, keys or ports other than 22: {logins}")
    hosts = [dataclasses.replace(m.host, address=logins[m.name].hostname) for m in machines]
    host_keys = {}
    for m in machines:
        log_file = console_dir(cache) / f"{m.name}.log"
        text = log_file.read_text(errors="replace") if log_file.exists() else ""
        host_keys[m.name] = layout.host_key_from_console(text)
        if not host_keys[m.name]:
            raise LabError(f"{m.name}: no host key on its console ({log_file}); was it booted by an older lab? "
                           "try `invoke lab.down --provider vagrant`, then lab.up again")
    folder = client_dir()
    folder.mkdir(parents=True, exist_ok=True)
    info = VmLabInfo(hosts={h.name: h.address for h in hosts}, inventory=repo_root() / INVENTORY,
                     ssh_config=folder / "ssh_config", known_hosts=folder / "known_hosts", driver=driver)
    _write(info.known_hosts, layout.known_hosts(hosts, host_keys))
    _write(info.ssh_config, layout.ssh_config(hosts, users.pop(), Path(keys.pop()), info.known_hosts.resolve()))
    _write(info.inventory, layout.inventory(hosts))
    return info


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a temp file moved into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _wait_ready(info: VmLabInfo) -> None:
    """Each VM answers over ssh with the written files (strict host keys) and has finished booting."""
    errors = []
    for name in info.hosts:
        try:
            reach.wait_ready(info.ssh_config, name, READY_TIMEOUT, still_alive=lambda: True, strict=False)
        except LabError as e:
            errors.append(str(e))
    if errors:
        raise LabError("VMs not ready: " + "; ".join(errors))
