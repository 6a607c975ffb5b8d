"""inventory/tutorial.yml on the lab: the tutorial's one server (the lab's `proxy`) runs Apache and
both apps on 127.0.0.1. Runs in order on fresh hosts (lab.reset first); at the end the tutorial's
apps are removed from the proxy and the lab inventory is deployed and verified again, so that the
proxy is proxy-only for the tests that follow."""
import json
import re
import time
from xml.etree import ElementTree

import pytest

from conftest import ROOT, get, invoke, recap, ssh

pytestmark = pytest.mark.lab

ADDRESS = "10.123.0.10"
TUTORIAL = "inventory/tutorial.yml"
APPS = ("hello", "howdy")
ROUTES = "/etc/apache2/provision/proxy-routes.inc"      # the lab's hosts are Debian


def answers(n=10):
    return [get(f"http://{ADDRESS}/")[2] for _ in range(n)]


def alternating(seen):
    return set(seen) == {"Hello world!", "Howdy world!"} and all(a != b for a, b in zip(seen, seen[1:]))


def alternates_within(seconds):
    """An app that was not listening yet when Apache first tried it sits out `balancer_retry`
    (5 s): poll that long, as verify does."""
    deadline = time.monotonic() + seconds
    while True:
        seen = answers(10)
        if alternating(seen) or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


def remove_tutorial_apps(lab):
    units = " ".join(f"provision-app-{a}.service" for a in APPS)
    ssh(lab, "proxy", f"systemctl disable --now {units}; "
                      + "; ".join(f"rm -rf /etc/systemd/system/provision-app-{a}.service /opt/provision/apps/{a}; "
                                  f"userdel app-{a}" for a in APPS)
                      + "; systemctl daemon-reload", check=False)


@pytest.fixture(scope="module")
def fresh(lab):
    from provision.lab import api
    api.reset(log=lambda m: None)
    yield lab
    remove_tutorial_apps(lab)


def test_cold_deploy_exits_0_and_smokes_through_the_proxy_address(fresh):
    proc = invoke("deploy", "-i", TUTORIAL, check=0)
    counts = recap(proc.stdout)
    assert list(counts) == ["proxy"], proc.stdout
    assert counts["proxy"]["changed"] > 0 and counts["proxy"]["failed"] == 0, proc.stdout
    assert re.search(rf"^proxy \| smoke \| GET http://{re.escape(ADDRESS)}/ -> 200 '(Hello|Howdy) world!'$",
                     proc.stdout, re.M), proc.stdout
    assert "GET http://127.0.0.1" not in proc.stdout


def test_second_deploy_changes_nothing(fresh):
    started = time.monotonic()
    proc = invoke("deploy", "-i", TUTORIAL, check=0)
    wall = time.monotonic() - started
    counts = recap(proc.stdout)
    assert counts["proxy"]["changed"] == 0 and counts["proxy"]["failed"] == 0, proc.stdout
    took = re.search(r"^took ([\d.]+) s$", proc.stdout, re.M).group(1)
    print(f"no-op deploy of the tutorial: {took} s in the run, {wall:.2f} s wall (with Python and invoke start)")


def test_proxy_alternates_and_apps_listen_on_localhost_only(fresh):
    seen = answers(10)
    assert alternating(seen), seen
    for app, port in zip(APPS, (8080, 8081)):
        local = ssh(fresh, "proxy", f"curl -s --max-time 5 http://127.0.0.1:{port}/").stdout
        assert local == f"{app.capitalize()} world!"
        listening = ssh(fresh, "proxy", f"ss -Hltn 'sport = :{port}'").stdout.split()
        assert f"127.0.0.1:{port}" in listening, listening
    for port in (8080, 8081):
        out = ssh(fresh, "web1", f"curl -sS --max-time 5 http://{ADDRESS}:{port}/; echo rc=$?", check=False)
        assert out.stdout.strip().endswith("rc=7"), out.stdout + out.stderr   # curl 7: could not connect
        # curl 7.88 says only "Couldn't connect"; bash names the reason: refused, not timed out
        out = ssh(fresh, "web1", f"timeout 5 bash -c 'exec 3<>/dev/tcp/{ADDRESS}/{port}'", check=False)
        assert out.returncode == 1 and "Connection refused" in out.stderr, (out.returncode, out.stderr)


def test_verify_passes_on_the_tutorial(fresh, tmp_path):
    junit = tmp_path / "verify.xml"
    invoke("verify", "-i", TUTORIAL, "--junit", str(junit), check=0)
    cases = {c.get("name"): c for c in ElementTree.parse(junit).iter("testcase")}
    for name in ("test_proxy_modules_loaded[proxy]", "test_requests_reach_apps[proxy]",
                 "test_app_listening[proxy-hello]", "test_app_answers[proxy-howdy]"):
        assert name in cases, sorted(cases)
        assert not list(cases[name]), f"{name}: {ElementTree.tostring(cases[name]).decode()[:500]}"


def test_single_mode_deploys_example_1(fresh):
    try:
        proc = invoke("deploy", "-i", TUTORIAL, "--mode", "single", check=0)
        assert recap(proc.stdout)["proxy"]["failed"] == 0
        routes = ssh(fresh, "proxy", f"cat {ROUTES}").stdout
        lines = [line.split() for line in routes.splitlines()]
        assert ["ProxyPreserveHost", "On"] in lines
        assert any(w[:3] == ["ProxyPass", "/", "http://127.0.0.1:8080/"] for w in lines), routes
        assert ["ProxyPassReverse", "/", "http://127.0.0.1:8080/"] in lines, routes
        assert set(answers(6)) == {"Hello world!"}
        invoke("verify", "-i", TUTORIAL, "--mode", "single", check=0)
    finally:
        invoke("deploy", "-i", TUTORIAL, check=0)
    seen = alternates_within(7)
    assert alternating(seen), seen


def test_failed_smoke_check_is_failed_1_in_recap_and_exit_2(fresh, tmp_path):
    """A public_url where nothing answers (the proxy's own :8080, on which the apps do not
    listen): the hosts converge, and the request clients would make really fails."""
    text = (ROOT / TUTORIAL).read_text()
    text = text.replace("ssh_config: ../.lab/ssh_config", f"ssh_config: {fresh.ssh_config}")
    text = text.replace(f"ansible_host: {ADDRESS}\n",
                        f"ansible_host: {ADDRESS}\n          public_url: http://{ADDRESS}:8080/\n")
    assert "public_url" in text
    inventory = tmp_path / "tutorial-wrong-url.yml"
    inventory.write_text(text)
    out = tmp_path / "run.json"
    proc = invoke("deploy", "-i", str(inventory), "--json", str(out), check=2)
    counts = recap(proc.stdout)
    assert counts["proxy"] == {"ok": counts["proxy"]["ok"], "changed": 0, "failed": 1, "unreachable": 0,
                               "skipped": 0}, proc.stdout
    assert re.search(rf"^proxy \| failed \| smoke: GET http://{re.escape(ADDRESS)}:8080/: .*refused", proc.stdout,
                     re.M), proc.stdout
    result = json.loads(out.read_text())
    assert result["hosts"]["proxy"]["failed"] == 1 and result["smoke"] == {"proxy": False}
    assert result["hosts"]["proxy"]["steps"][-1]["step"] == f"smoke GET http://{ADDRESS}:8080/"


def test_lab_inventory_verifies_after_the_tutorial(fresh):
    """Last: the proxy back to proxy-only, as inventory/lab.yml and the other lab tests expect."""
    remove_tutorial_apps(fresh)
    left = ssh(fresh, "proxy", "ls /etc/systemd/system | grep -c provision-app; ss -Hltn", check=False).stdout
    assert left.splitlines()[0] == "0" and ":8080" not in left and ":8081" not in left, left
    invoke("deploy", "-i", "inventory/lab.yml", "--mode", "balancer", check=0)
    seen = alternates_within(7)
    assert alternating(seen), seen
    invoke("verify", "-i", "inventory/lab.yml", check=0)
