"""Debian 11, 12 and 13 as captured on the mixed lab (tests/fixtures/debian1[123], SOURCES.md).

Their os-release, `python3 -V`, `apache2ctl -M` and whole facts outputs parse; both roles planned
on the facts of deployed hosts treat the three releases alike (packages, user, service and venv
unchanged; the same steps to do where templates changed after the capture), and each venv holds
the wheels pinned for that release's Python."""
from dataclasses import dataclass
from pathlib import Path

import pytest

from provision import facts
from provision.inventory import load
from provision.platforms import APP_PINS_CURRENT, DEBIAN, INSTALLER_PIN_CURRENT, PYTHON_VERSION_BY_RELEASE
from provision.roles import backends, proxy
from provision.wheels import Wheelhouse, installer_for, pins_for

FIX = Path(__file__).resolve().parents[2] / "fixtures"
ROOT = Path(__file__).resolve().parents[3]

RELEASES = {  # fixture folder -> (VERSION_ID, codename, python3 major.minor)
    "debian11": ("11", "bullseye", (3, 9)),
    "debian12": ("12", "bookworm", (3, 11)),
    "debian13": ("13", "trixie", (3, 13)),
}
# Where each capture was taken: (inventory, host) for the proxy and the backend facts.
PROXY_FACTS = {
    "debian11": ("inventory/lab-mixed-rotated.yml", "web2"),
    "debian12": ("inventory/lab.yml", "proxy"),
    "debian13": ("inventory/lab-mixed.yml", "proxy"),
}
BACKEND_FACTS = {
    "debian11": ("inventory/lab-mixed.yml", "web2", "howdy"),
    "debian12": ("inventory/lab-mixed.yml", "web1", "hello"),
    "debian13": ("inventory/lab-mixed-rotated.yml", "proxy", "hello"),
}
PROXY_MODULES = {"proxy_module", "proxy_http_module", "proxy_balancer_module", "lbmethod_byrequests_module",
                 "slotmem_shm_module", "core_module"}


@dataclass
class Opts:
    mode: str | None = None
    wheels: object = None


@pytest.mark.parametrize("release", RELEASES)
def test_os_release(release):
    version, codename, _ = RELEASES[release]
    osr = facts.parse_os_release((FIX / release / "os-release").read_text())
    assert (osr["ID"], osr["VERSION_ID"], osr["VERSION_CODENAME"]) == ("debian", version, codename)
    assert facts.platform_for(osr).family == "debian"


@pytest.mark.parametrize("release", RELEASES)
def test_python3_version(release):
    python = facts.parse_python_version((FIX / release / "python3-V.txt").read_text())
    assert python[:2] == RELEASES[release][2] and len(python) == 3
    # the table a first deploy to a host without python3 plans with says the same
    osr = facts.parse_os_release((FIX / release / "os-release").read_text())
    assert PYTHON_VERSION_BY_RELEASE[("debian", osr["VERSION_ID"])] == python


@pytest.mark.parametrize("release", RELEASES)
def test_apache2ctl_M(release):
    assert PROXY_MODULES <= facts.parse_apache_modules((FIX / release / "apache2ctl-M.txt").read_text())


def proxy_plan(release):
    inventory_path, host = PROXY_FACTS[release]
    f = facts.parse((FIX / release / "facts-proxy.txt").read_text())
    inventory = load(ROOT / inventory_path)
    return f, [r.plan(f) for r in proxy.resources(inventory.hosts[host], f.platform, inventory, Opts())]


@pytest.mark.parametrize("release", RELEASES)
def test_whole_facts_output_of_a_deployed_proxy(release):
    f, changes = proxy_plan(release)
    assert f.platform.family == "debian" and f.os["VERSION_ID"] == RELEASES[release][0]
    assert f.python[:2] == RELEASES[release][2] and "apache2" in f.packages
    assert {"proxy", "proxy_http", "proxy_balancer", "lbmethod_byrequests"} <= f.apache_modules
    by = {c.label: c for c in changes}
    assert not by["packages apache2 curl"].changed and not by["service apache2.service"].changed


def test_proxy_plans_on_deployed_debian_11_12_13_change_the_same_steps():
    """The captures predate later template changes, so a deployed host's plan need not be empty; but
    the role and the platform table must treat the three releases alike."""
    changed = {r: [c.label for c in proxy_plan(r)[1] if c.changed] for r in RELEASES}
    print(changed)
    assert changed["debian11"] == changed["debian12"] == changed["debian13"]


def captured_wheelhouse(release, app, python):
    """The wheelhouse the deployed venv was built from, as its marker file records it."""
    lines = (FIX / release / f"venv-marker-{app}.txt").read_text().splitlines()
    pins = tuple(line.split(" ", 1)[1] for line in lines if line.startswith("pin "))
    files = tuple(Path("/cache", line.split(" ", 1)[1]) for line in lines if line.startswith("wheel "))
    installer = next(f for f in files if f.name.startswith(installer_for(python).replace("==", "-") + "-"))
    return Wheelhouse("captured", pins, files, installer, digests=tuple("0" * 64 for _ in files))


def backend_plan(release):
    inventory_path, host, app = BACKEND_FACTS[release]
    python = RELEASES[release][2]
    f = facts.parse((FIX / release / "facts-backend.txt").read_text())
    house = captured_wheelhouse(release, app, python)
    inventory = load(ROOT / inventory_path)
    resources = backends.resources(inventory.hosts[host], f.platform, inventory, Opts(wheels=lambda _: house))
    return f, house, [r.plan(f) for r in resources]


@pytest.mark.parametrize("release", RELEASES)
def test_deployed_backend_keeps_its_packages_user_and_venv_of_its_pythons_pins(release):
    _, host, app = BACKEND_FACTS[release]
    python = RELEASES[release][2]
    f, house, changes = backend_plan(release)
    assert f.platform.family == "debian" and f.python[:2] == python
    # the venv holds this Python's pins; the captured venvs predate the apps' /ws and its wheels
    websocket = ("flask-sock", "simple-websocket", "wsproto", "h11")
    assert house.pins == tuple(p for p in pins_for(python) if p.split("==")[0] not in websocket)
    by = {c.label: c for c in changes}
    packages = "packages " + " ".join(f.platform.python_packages)
    for label in (packages, f"user app-{app}", f"venv /opt/provision/apps/{app}/venv"):
        assert not by[label].changed, (label, by[label].reason)
    assert "Flask==" in by[f"venv /opt/provision/apps/{app}/venv"].reason


def test_backend_plans_on_deployed_debian_11_12_13_change_the_same_steps():
    changed = {}
    for release, (_, _, app) in BACKEND_FACTS.items():
        changed[release] = [c.label.replace(app, "APP") for c in backend_plan(release)[2] if c.changed]
    print(changed)
    assert changed["debian11"] == changed["debian12"] == changed["debian13"]


def test_pins_per_python_on_the_fleet():
    for python in ((3, 6), (3, 9), (3, 11), (3, 13)):
        names = [p.split("==")[0].lower() for p in pins_for(python)]
        assert {"flask", "werkzeug", "gunicorn"} <= set(names) and len(names) == len(set(names))
    assert pins_for((3, 11)) == pins_for((3, 13)) == APP_PINS_CURRENT
    assert installer_for((3, 13)) == INSTALLER_PIN_CURRENT
    # Flask needs importlib-metadata below 3.10; pip download does not see that marker from 3.11.
    assert any(p.startswith("importlib-metadata==") for p in pins_for((3, 9)))
    assert "gunicorn==23.0.0" in pins_for((3, 9)) and installer_for((3, 9)) == "pip==26.0.1"


def test_debian_11_alone_adds_python3_distutils_and_facts_ask_for_it():
    by_version = {v: facts.platform_for(facts.parse_os_release((FIX / r / "os-release").read_text()))
                  for r, (v, _, _) in RELEASES.items()}
    assert "python3-distutils" in by_version["11"].python_packages
    assert by_version["12"] is DEBIAN and by_version["13"] is DEBIAN
    from provision.engine import fact_request
    inventory = load(ROOT / "inventory/lab-mixed.yml")
    req = fact_request(backends, inventory.hosts["web2"], inventory, Opts())
    assert "python3-distutils" in req.packages
