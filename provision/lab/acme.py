"""The lab's own ACME server (`invoke lab.up --acme`): Debian's pebble, Let's Encrypt's test CA,
with real HTTP-01 validation, and pebble-challtestsrv (shipped in the same package) as its DNS
server, answering every name with the proxy's address, so that the lab's site names resolve to the
proxy for the CA and nowhere else.

Both run on this machine, bound to a lab address of their own on the lab's bridge (ADDRESS), and
are known by recorded PID. pebble serves its directory over HTTPS with a certificate from a small
CA of the lab's (kept in the cache); clients trust that CA to talk to the directory. pebble makes
a new root for the certificates it issues at every start: `up` writes the running one into the
checkout's .lab/acme/, where the lab's inventory (inventory/lab-acme.yml) points.
"""
from __future__ import annotations

import json
import shutil
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .. import tls
from . import layout
from .system import LabError, alive, ensure_packages, read_pid, run, spawn, terminate

PACKAGES = ("pebble",)
PEBBLE = "/usr/bin/pebble"
DNS_SERVER = "/usr/bin/pebble-challtestsrv"
ADDRESS = layout.ACME_ADDRESS
DIRECTORY_PORT = 14000
MANAGEMENT_PORT = 15000
DNS_PORT = 8053
DNS_MANAGEMENT_PORT = 8055
DIRECTORY = f"https://{ADDRESS}:{DIRECTORY_PORT}/dir"
START_TIMEOUT = 20
# pebble's test knobs (its README): validate at once (no random 0-15 s wait), never reject a good
# nonce, and never reuse an earlier authorization, so that every order is validated for real.
PEBBLE_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}


@dataclass(frozen=True)
class AcmeInfo:
    """The lab's ACME server as it runs: where it answers and the files to trust it."""
    directory: str              # the ACME directory URL
    directory_ca: Path          # the CA the directory's HTTPS certificate chains to
    root: Path                  # pebble's root: what clients trust for the certificates it issues
    dns_management: str         # pebble-challtestsrv's management URL (add-a, clear-a)


def folder(cache: Path) -> Path:
    return cache / "acme"


def client_folder(root: Path) -> Path:
    """The checkout's copies of the directory's CA and pebble's root."""
    return root / ".lab" / "acme"


def _pids(cache: Path) -> dict[str, int | None]:
    top = folder(cache)
    found = {name: read_pid(top / f"{name}.pid") for name in ("pebble", "dns")}
    markers = {"pebble": PEBBLE, "dns": DNS_SERVER}
    return {name: pid if alive(pid, markers[name]) else None for name, pid in found.items()}


def running(cache: Path) -> bool:
    return all(_pids(cache).values())


def ensure(cache: Path, repo: Path, proxy_address: str, log) -> AcmeInfo:
    """pebble and its DNS server up on ADDRESS (started unless both already run), and the checkout's
    .lab/acme/ holding the directory's CA and the running pebble's root."""
    ensure_packages(log, PACKAGES, why="the lab's ACME server needs")
    top = folder(cache)
    top.mkdir(parents=True, exist_ok=True)
    directory_ca, cert, key = tls.local_server_certificate(top / "listener", "acme-directory", ADDRESS)
    _add_address()
    if not running(cache):
        stop(cache, keep_address=True)
        log(f"Starting the lab's ACME server (pebble) on {ADDRESS}")
        (top / "pebble-config.json").write_text(json.dumps(layout.pebble_config(
            ADDRESS, DIRECTORY_PORT, MANAGEMENT_PORT, str(cert), str(key)), indent=1) + "\n")
        spawn([DNS_SERVER, "-dns01", f"{ADDRESS}:{DNS_PORT}", "-management", f"{ADDRESS}:{DNS_MANAGEMENT_PORT}",
               "-http01", "", "-https01", "", "-tlsalpn01", "",
               "-defaultIPv4", proxy_address, "-defaultIPv6", ""],
              top / "dns.pid", top / "dns.log")
        setup = "".join(f"export {k}={v}\n" for k, v in PEBBLE_ENV.items())
        spawn([PEBBLE, "-config", str(top / "pebble-config.json"), "-dnsserver", f"{ADDRESS}:{DNS_PORT}"],
              top / "pebble.pid", top / "pebble.log", setup=setup)
    root = _wait_for_root(directory_ca, top / "pebble.log")
    out = client_folder(repo)
    out.mkdir(parents=True, exist_ok=True)
    _write_if_changed(out / "directory-ca.pem", directory_ca.read_bytes())
    _write_if_changed(out / "pebble-root.pem", root)
    return AcmeInfo(DIRECTORY, out / "directory-ca.pem", out / "pebble-root.pem",
                    f"http://{ADDRESS}:{DNS_MANAGEMENT_PORT}")


def _wait_for_root(directory_ca: Path, logfile: Path) -> bytes:
    """Poll until the directory answers, then fetch pebble's root from its management interface."""
    context = ssl.create_default_context(cafile=str(directory_ca))
    deadline = time.monotonic() + START_TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(DIRECTORY, context=context, timeout=2) as resp:
                json.load(resp)
            with urllib.request.urlopen(f"https://{ADDRESS}:{MANAGEMENT_PORT}/roots/0", context=context,
                                        timeout=2) as resp:
                return resp.read()
        except (OSError, ValueError, urllib.error.URLError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise LabError(f"pebble did not answer on {DIRECTORY} within {START_TIMEOUT} s ({last}); see {logfile}")


def stop(cache: Path, keep_address: bool = False) -> None:
    """Stop pebble and its DNS server by their recorded PIDs; remove the lab address."""
    pids = [p for p in _pids(cache).values() if p]
    if pids:
        terminate(pids)
    for name in ("pebble", "dns"):
        (folder(cache) / f"{name}.pid").unlink(missing_ok=True)
    if not keep_address:
        _remove_address()


def remove_client_files(repo: Path) -> None:
    shutil.rmtree(client_folder(repo), ignore_errors=True)


def _cidr() -> str:
    return f"{ADDRESS}/{layout.PREFIX}"


def _add_address() -> None:
    have = run(["ip", "-o", "-4", "addr", "show", "dev", layout.BRIDGE]).stdout
    if f" {_cidr()} " not in have:
        run(["ip", "addr", "add", _cidr(), "dev", layout.BRIDGE])


def _remove_address() -> None:
    if Path("/sys/class/net", layout.BRIDGE).exists():
        have = run(["ip", "-o", "-4", "addr", "show", "dev", layout.BRIDGE], check=False).stdout
        if f" {_cidr()} " in have:
            run(["ip", "addr", "del", _cidr(), "dev", layout.BRIDGE], check=False)


def _write_if_changed(path: Path, data: bytes) -> None:
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


# -- the test's DNS answers (pebble-challtestsrv's management interface) --------------------------

def point_name(info: AcmeInfo, name: str, address: str) -> None:
    """Make `name` resolve to `address` for the CA (instead of the proxy)."""
    _manage(info, "add-a", {"host": name.rstrip(".") + ".", "addresses": [address]})


def forget_name(info: AcmeInfo, name: str) -> None:
    _manage(info, "clear-a", {"host": name.rstrip(".") + "."})


def _manage(info: AcmeInfo, action: str, body: dict) -> None:
    request = urllib.request.Request(f"{info.dns_management}/{action}", data=json.dumps(body).encode(),
                                     method="POST")
    with urllib.request.urlopen(request, timeout=5) as resp:
        if resp.status != 200:
            raise LabError(f"pebble-challtestsrv {action}: HTTP {resp.status}")
