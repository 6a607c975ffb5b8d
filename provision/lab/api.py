"""The lab's public API: up, status, reset, down.

One machine has one lab: the bridge, the addresses and the hosts' layers live
in the shared cache folder, and PIDs are recorded there. Each checkout has
its own `.lab/` (key, ssh_config, known_hosts); `up` from a new checkout
reuses running hosts and adds its key to them.

`up(extra=N)` brings the lab to exactly proxy, web1..web(2+N): missing hosts
are started, surplus hosts (from an earlier, larger `up`) are stopped and
their layers removed. A host that is not running always starts from a fresh
layer, as after a new install. Every host runs Debian 12, or with `mixed`
the release layout.MIXED_SUITES gives it; a running host on another release
than the one asked for is stopped and started afresh on the right image, so
a mixed lab never outlives the next default `up`.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import acme as acme_server, aptproxy, image, layout, network, nspawn, reach
from .system import (LabError, cache_dir, check_machine, ensure_key, ensure_packages, locked,
                     raise_inotify_limits, repo_root)

__all__ = ["LabError", "LabInfo", "up", "status", "reset", "down"]

BOOT_TIMEOUT = 180


@dataclass
class LabInfo:
    """The lab as it runs: its hosts and the files to reach them."""
    hosts: dict[str, str]  # name -> address
    ssh_config: Path
    known_hosts: Path
    key: Path
    inventory: Path
    pids: dict[str, int] = field(default_factory=dict)  # name -> nspawn PID
    releases: dict[str, str] = field(default_factory=dict)  # name -> "Debian 12 (bookworm)"
    acme: acme_server.AcmeInfo | None = None  # the lab's ACME server, with `up(acme=True)`


def _clear_errors(fn):
    """Turn an unexpected OS error into a LabError that says what to try."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (OSError, subprocess.SubprocessError) as e:
            raise LabError(f"{fn.__name__}: {e}; try `invoke lab.down`, then `invoke lab.up`") from e
    return wrapper


def _info(hosts: list[layout.Host], cache: Path) -> LabInfo:
    lab = repo_root() / ".lab"
    return LabInfo(
        hosts={h.name: h.address for h in hosts},
        ssh_config=lab / "ssh_config",
        known_hosts=lab / "known_hosts",
        key=lab / "id_ed25519",
        inventory=layout.inventory_path(repo_root(), len(hosts), layout.is_mixed(hosts)),
        pids={h.name: nspawn.pid(cache, h.name) for h in hosts},
        releases={h.name: h.release for h in hosts},
    )


def images(hosts: list[layout.Host], log) -> dict[str, Path]:
    """Each release's base image, built or unpacked when missing (no lab needed)."""
    cache = cache_dir()
    return {suite: image.ensure(cache, log, suite) for suite in dict.fromkeys(h.suite for h in hosts)}


@_clear_errors
def up(extra: int = 0, mixed: bool = False, acme: bool = False, log=print) -> LabInfo:
    """Bring the lab up (or check it is), with proxy, web1, web2 and `extra` more.

    All on Debian 12, or with `mixed` on Debian 13, 12 and 11 in turn. With `acme`, also the lab's
    ACME server (provision.lab.acme); without, an ACME server left running is stopped."""
    try:
        hosts = layout.plan(extra, mixed)
    except ValueError as e:
        raise LabError(str(e)) from None
    check_machine()
    ensure_packages(log)
    raise_inotify_limits()
    cache = cache_dir()
    images(hosts, log)  # before the lab's lock: an image build does not need the lab
    with locked(cache):
        info = _up(hosts, cache, log)
        if acme:
            proxy = next(h.address for h in hosts if h.group == "proxies")
            info.acme = acme_server.ensure(cache, repo_root(), proxy, log)
        elif acme_server.running(cache):
            log("Stopping the lab's ACME server")
            acme_server.stop(cache)
        return info


def _up(hosts: list[layout.Host], cache: Path, log) -> LabInfo:
    bases = images(hosts, log)
    info = _info(hosts, cache)
    lab_key = ensure_key(info.key, log)
    network.ensure_bridge()
    aptproxy.ensure(aptproxy.of_lab(cache))

    names = {h.name for h in hosts}
    surplus = [n for n in nspawn.known(cache) if n not in names]
    if surplus:
        log(f"Stopping hosts beyond this lab: {', '.join(surplus)}")
        _remove_hosts(cache, surplus)
    moving = [h for h in hosts if nspawn.pid(cache, h.name) and nspawn.suite(cache, h.name) != h.suite]
    if moving:
        log(f"Stopping hosts to boot them on another release: {', '.join(h.name for h in moving)}")
        _remove_hosts(cache, [h.name for h in moving])

    booting = [h for h in hosts if not nspawn.pid(cache, h.name)]
    if booting:
        log(f"Booting {', '.join(f'{h.name} ({h.release})' for h in booting)}")
    for h in booting:
        nspawn.clean(cache, h.name)
        nspawn.fresh_layer(cache, bases[h.suite], h, lab_key)
        nspawn.mount(cache, bases[h.suite], h.name)
        nspawn.start(cache, h.name)
    for h in hosts:
        nspawn.authorize(cache, h.name, lab_key)

    _write_client_files(info, hosts, cache)
    _wait_all(info, hosts, cache, fresh={h.name for h in booting})
    _save_state(cache, hosts)
    info.pids = {h.name: nspawn.pid(cache, h.name) for h in hosts}
    return info


def status() -> list[tuple[str, str, str, str, bool]]:
    """One row per lab host: (host, address, release, state, ssh_ok)."""
    cache = cache_dir()
    hosts = _load_state(cache)
    config = repo_root() / ".lab" / "ssh_config"

    def row(h: layout.Host):
        if not nspawn.pid(cache, h.name):
            return (h.name, h.address, h.release, "stopped", False)
        if not config.exists():
            return (h.name, h.address, h.release, "up (no .lab/ssh_config: run lab.up)", False)
        state = reach.system_state(config, h.name)
        return (h.name, h.address, h.release, state or "unreachable", state is not None)

    with ThreadPoolExecutor(max(1, len(hosts))) as pool:
        return list(pool.map(row, hosts))


@_clear_errors
def reset(log=print) -> LabInfo:
    """Fresh hosts as after a new install: new layers, new host keys, reboot."""
    check_machine()
    cache = cache_dir()
    with locked(cache):
        hosts = _load_state(cache)
        log(f"Resetting {', '.join(h.name for h in hosts)}")
        nspawn.stop(cache, [h.name for h in hosts])
        return _up(hosts, cache, log)


@_clear_errors
def down(log=print) -> None:
    """Stop everything the lab made on the machine; the base image cache stays."""
    check_machine()
    cache = cache_dir()
    with locked(cache):
        _down(cache, log)


def _down(cache: Path, log) -> None:
    names = nspawn.known(cache)
    if names:
        log(f"Stopping {', '.join(names)}")
    _remove_hosts(cache, names)
    acme_server.stop(cache)
    aptproxy.stop(aptproxy.of_lab(cache))
    network.remove_bridge()
    for parent in nspawn.cgroup_parents():
        if parent.is_dir():
            try:
                parent.rmdir()
            except OSError as e:
                log(f"Could not remove {parent}: {e}")
    (cache / "lab.json").unlink(missing_ok=True)


# --- helpers ----------------------------------------------------------------

def _remove_hosts(cache: Path, names: list[str]) -> None:
    nspawn.stop(cache, names)
    for name in names:
        shutil.rmtree(nspawn.folder(cache, name), ignore_errors=True)


def _write_client_files(info: LabInfo, hosts: list[layout.Host], cache: Path) -> None:
    lines = [layout.known_hosts_line(h, nspawn.host_key(cache, h.name)) for h in hosts]
    _write_if_changed(info.known_hosts, "\n".join(lines) + "\n")
    _write_if_changed(info.ssh_config, layout.ssh_config(hosts, info.key.resolve(), info.known_hosts.resolve()))
    info.inventory.parent.mkdir(parents=True, exist_ok=True)
    _write_if_changed(info.inventory, layout.inventory(hosts, ssh_config=os.path.relpath(
        info.ssh_config, info.inventory.parent)))
    grown = layout.inventory_path(repo_root(), len(hosts) + 1, layout.is_mixed(hosts))
    if info.inventory != grown:
        grown.unlink(missing_ok=True)       # back to 3 hosts: no stale inventory of the bigger lab


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _wait_all(info: LabInfo, hosts: list[layout.Host], cache: Path, fresh: set[str]) -> None:
    def wait(h: layout.Host):
        try:
            reach.wait_ready(info.ssh_config, h.name, BOOT_TIMEOUT,
                             still_alive=lambda: nspawn.pid(cache, h.name) is not None,
                             strict=h.name in fresh)
        except LabError as e:
            tail = nspawn.log_tail(cache, h.name)
            return f"{e}" + (f"\n  last lines of {nspawn.folder(cache, h.name) / 'nspawn.log'}:\n{tail}" if tail else "")
        return None

    with ThreadPoolExecutor(len(hosts)) as pool:
        errors = [e for e in pool.map(wait, hosts) if e]
    if errors:
        raise LabError("hosts not ready (try `invoke lab.reset`, or `invoke lab.down` then `lab.up`):\n"
                       + "\n".join(errors))


def _save_state(cache: Path, hosts: list[layout.Host]) -> None:
    (cache / "lab.json").write_text(json.dumps({h.name: h.address for h in hosts}, indent=1) + "\n")


def _load_state(cache: Path) -> list[layout.Host]:
    try:
        saved = json.loads((cache / "lab.json").read_text())
    except (OSError, ValueError):
        return layout.plan(0)
    extra = max(0, len(saved) - 3)
    return [dataclasses.replace(h, suite=nspawn.suite(cache, h.name))
            for h in layout.plan(extra) if h.name in saved]


def ssh_argv(host: str) -> list[str]:
    """The command line `lab.ssh` execs."""
    return ["ssh", "-F", str(repo_root() / ".lab" / "ssh_config"), host]
