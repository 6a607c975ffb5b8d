"""The mixed lab (`invoke lab.up --mixed`): proxy on Debian 13, web1 on 12, web2 on 11.

The job converges, is a no-op the second time and passes verify (plain and HTTPS) on three real
releases; each backend runs the wheels pinned for its own Python. The module ends with the default
all-Debian-12 lab again (the last test checks it), so later tests never see a mixed lab.
Each step prints its time: together they are what the mixed lab adds to the suite."""
import json
import re
import time

import pytest
import yaml

from provision.lab import api, layout
from provision.wheels import pins_for

from conftest import ROOT, get, invoke, recap, ssh

pytestmark = pytest.mark.lab

INVENTORY = "inventory/lab-mixed.yml"
# inventory/lab-tls.yml names the same hosts and apps as lab-mixed.yml, with tls: self-signed on the proxy.
TLS_INVENTORY = "inventory/lab-tls.yml"
VERSION_ID = {"proxy": "13", "web1": "12", "web2": "11"}
PYTHON = {"web1": (3, 11), "web2": (3, 9)}
APP = {"web1": ("hello", 8080), "web2": ("howdy", 8081)}


def timed(what, fn):
    start = time.monotonic()
    result = fn()
    print(f"mixed lab: {what} took {time.monotonic() - start:.1f} s")
    return result


@pytest.fixture(scope="module")
def mixed(lab):
    info = timed("up --mixed", lambda: api.up(mixed=True, log=lambda m: print(f"lab: {m}")))
    yield info
    timed("up (back to all Debian 12)", lambda: api.up(log=lambda m: print(f"lab: {m}")))


def os_release(info, host):
    text = ssh(info, host, "cat /etc/os-release").stdout
    return dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', text, re.M))


def test_up_mixed_boots_three_releases_and_status_shows_them(mixed):
    assert mixed.releases == {"proxy": "Debian 13 (trixie)", "web1": "Debian 12 (bookworm)",
                              "web2": "Debian 11 (bullseye)"}
    assert mixed.inventory.name == "lab-mixed.yml"
    for host, version in VERSION_ID.items():
        seen = os_release(mixed, host)
        assert (seen["ID"], seen["VERSION_ID"]) == ("debian", version), seen
        assert seen["VERSION_CODENAME"] in mixed.releases[host]
    status = invoke("lab.status", check=0).stdout
    print(status)
    for host, release in mixed.releases.items():
        row = next(line for line in status.splitlines() if f" {host} " in line)
        assert release in row and "running" in row and "ok" in row, row


def test_second_up_mixed_keeps_the_hosts(mixed):
    again = timed("second up --mixed", lambda: api.up(mixed=True, log=print))
    assert again.pids == mixed.pids and all(again.pids.values())


def test_deploy_converges_then_changes_nothing(mixed):
    first = timed("cold deploy", lambda: invoke("deploy", "-i", INVENTORY, check=0))
    counts = recap(first.stdout)
    print(first.stdout[-800:])
    assert set(counts) == set(VERSION_ID)
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in counts.values()), first.stdout
    second = timed("no-op deploy", lambda: invoke("deploy", "-i", INVENTORY, check=0))
    counts = recap(second.stdout)
    assert set(counts) == set(VERSION_ID) and all(c["changed"] == 0 for c in counts.values()), second.stdout
    seen = [get("http://10.123.0.10/")[2] for _ in range(6)]
    assert set(seen) == {"Hello world!", "Howdy world!"}, seen


def test_verify_passes(mixed):
    proc = timed("verify", lambda: invoke("verify", "-i", INVENTORY))
    assert proc.returncode == 0, proc.stdout[-3000:]


def venv_versions(info, host, app):
    """(major, minor, Flask, Werkzeug, gunicorn) as the app's own venv imports them."""
    probe = ("import importlib.metadata as m, sys; "
             "print(sys.version_info[0], sys.version_info[1], m.version('flask'), m.version('werkzeug'), "
             "m.version('gunicorn'))")
    return ssh(info, host, f"/opt/provision/apps/{app}/venv/bin/python -c \"{probe}\"").stdout.split()


def pinned_versions(python):
    pinned = dict(p.lower().split("==") for p in pins_for(python))
    return [str(python[0]), str(python[1]), pinned["flask"], pinned["werkzeug"], pinned["gunicorn"]]


@pytest.mark.parametrize("host", ["web1", "web2"])
def test_each_venv_runs_the_wheels_pinned_for_its_python(mixed, host):
    name, port = APP[host]
    assert ssh(mixed, host, "python3 -V").stdout.startswith("Python %d.%d." % PYTHON[host])
    seen = venv_versions(mixed, host, name)
    print(host, seen)
    assert seen == pinned_versions(PYTHON[host])
    _, _, body = get(f"http://{mixed.hosts[host]}:{port}/whoami")
    assert json.loads(body)["python"].startswith("%d.%d." % PYTHON[host]), body


def test_whoami_through_the_proxy_shows_two_pythons(mixed):
    seen = {json.loads(get("http://10.123.0.10/whoami")[2])["python"][:4] for _ in range(6)}
    assert seen == {"3.11", "3.9."}, seen


def test_the_same_flaskr_release_on_two_pythons(mixed, tmp_path):
    """Flask's tutorial app as a project on web1 (Python 3.11) and web2 (3.9): its dependencies are
    resolved for each host's own Python, so the two releases differ in ID, and each works."""
    flaskr = {"name": "flaskr", "port": 8090, "project": str(ROOT / "tests" / "fixtures" / "apps" / "flaskr"),
              "wsgi": "flaskr:create_app()", "data_dir": True,
              "release_command": ['test -f "$PROVISION_DATA_DIR/flaskr.sqlite" || flask --app flaskr init-db']}
    data = {"all": {"vars": {"ssh_config": str(mixed.ssh_config)}, "children": {
        "proxies": {"vars": {"pools": {"flaskr": {"members": ["web1:flaskr", "web2:flaskr"], "sticky": True}},
                             "sites": [{"server_name": "flaskr.example.test", "routes": [{"path": "/", "pool": "flaskr"}]}]},
                    "hosts": {"proxy": {"ansible_host": mixed.hosts["proxy"]}}},
        "backends": {"hosts": {h: {"ansible_host": mixed.hosts[h], "apps": [flaskr]} for h in ("web1", "web2")}}}}}
    path = tmp_path / "flaskr-mixed.yml"
    path.write_text(yaml.safe_dump(data))
    proc = timed("deploy of flaskr on two Pythons", lambda: invoke("deploy", "-i", str(path), timeout=900))
    assert proc.returncode == 0, proc.stdout[-3000:]
    ids = {h: ssh(mixed, h, "readlink /opt/provision/apps/flaskr/current").stdout.strip() for h in PYTHON}
    pythons = {h: ssh(mixed, h, "/opt/provision/apps/flaskr/current/venv/bin/python -V").stdout.strip() for h in PYTHON}
    print("flaskr releases:", ids, pythons)
    assert ids["web1"] != ids["web2"] and all(i.startswith("releases/") for i in ids.values()), ids
    assert pythons["web1"].startswith("Python 3.11.") and pythons["web2"].startswith("Python 3.9."), pythons
    for h in PYTHON:
        status, _, body = get(f"http://{mixed.hosts[h]}:8090/auth/login")
        assert status == 200 and "Log In - Flaskr" in body, (h, status, body[:300])
    status, _, body = get(f"http://{mixed.hosts['proxy']}/", host_header="flaskr.example.test")
    assert status == 200 and "Posts" in body, body[:300]
    again = invoke("deploy", "-i", str(path), check=0)
    assert all(c["changed"] == 0 for c in recap(again.stdout).values()), again.stdout


def test_https_inventory_converges_and_verifies(mixed):
    first = timed("deploy with TLS", lambda: invoke("deploy", "-i", TLS_INVENTORY, check=0))
    counts = recap(first.stdout)
    assert counts["proxy"]["changed"] > 0 and all(c["failed"] == 0 for c in counts.values()), first.stdout
    again = invoke("deploy", "-i", TLS_INVENTORY, check=0)
    assert all(c["changed"] == 0 for c in recap(again.stdout).values()), again.stdout
    proc = timed("verify with TLS", lambda: invoke("verify", "-i", TLS_INVENTORY))
    assert proc.returncode == 0, proc.stdout[-3000:]


# The same hosts with the roles moved round: the proxy role on Debian 11, the apps on 13 and 12.
ROTATED = "inventory/lab-mixed-rotated.yml"


def test_roles_moved_round_proxy_on_debian_11_and_an_app_on_python_313(mixed):
    """With lab-mixed.yml above, each role has now run on each of the three releases."""
    first = timed("deploy, roles moved round", lambda: invoke("deploy", "-i", ROTATED, check=0))
    counts = recap(first.stdout)
    assert set(counts) == set(VERSION_ID) and all(c["failed"] == 0 for c in counts.values()), first.stdout
    again = invoke("deploy", "-i", ROTATED, check=0)
    assert all(c["changed"] == 0 for c in recap(again.stdout).values()), again.stdout
    proc = timed("verify, roles moved round", lambda: invoke("verify", "-i", ROTATED))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert venv_versions(mixed, "proxy", "hello") == pinned_versions((3, 13))
    seen = {json.loads(get(f"http://{mixed.hosts['web2']}/whoami")[2])["python"][:4] for _ in range(6)}
    assert seen == {"3.13", "3.11"}, seen


def test_extra_host_on_debian_13_runs_its_app_on_python_313(mixed):
    """--extra 1 adds web3 on Debian 13 (the cycle starts again): a backend on Python 3.13."""
    committed = mixed.inventory.read_text()
    big = timed("up --mixed --extra 1", lambda: api.up(extra=1, mixed=True, log=print))
    try:
        assert big.releases["web3"] == "Debian 13 (trixie)" and os_release(big, "web3")["VERSION_ID"] == "13"
        assert big.inventory.name == "lab-mixed.yml" and big.inventory.parent.name == ".lab"  # untracked
        proc = timed("deploy of web3", lambda: invoke("deploy", "-i", str(big.inventory), "--limit", "web3",
                                                       check=0))
        assert recap(proc.stdout)["web3"]["changed"] > 0, proc.stdout
        seen = venv_versions(big, "web3", "hello")
        print("web3", seen)
        assert seen == pinned_versions((3, 13))
        _, _, body = get(f"http://{big.hosts['web3']}:8080/whoami")
        assert json.loads(body)["python"].startswith("3.13."), body
    finally:
        small = api.up(mixed=True, log=print)
    assert list(small.hosts) == ["proxy", "web1", "web2"] and small.inventory.read_text() == committed
    assert not big.inventory.exists()


def test_zz_default_up_puts_every_host_back_on_debian_12(mixed):
    back = timed("up (default) after the mixed lab", lambda: api.up(log=print))
    assert set(back.releases.values()) == {"Debian 12 (bookworm)"}
    assert back.inventory.read_text() == layout.inventory(layout.plan())
    assert back.pids["web1"] == mixed.pids["web1"]    # already on Debian 12: kept as it was
    assert back.pids["proxy"] != mixed.pids["proxy"] and back.pids["web2"] != mixed.pids["web2"]
    for host in VERSION_ID:
        assert os_release(back, host)["VERSION_ID"] == "12"
