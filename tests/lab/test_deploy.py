"""The job on the lab, over real SSH: check mode, cold deploy, idempotence, modes, self-healing apps.

Runs in order on fresh hosts (lab.reset first) and leaves the lab deployed in balancer mode."""
import json
import time

import pytest

from conftest import get, invoke, recap, ssh, unit_state

pytestmark = pytest.mark.lab

PROXY = "http://10.123.0.10"
APPS = {"web1": ["provision-app-hello.service"], "web2": ["provision-app-howdy.service"]}
HOSTS = {"proxy", "web1", "web2"}


def answers(n=10):
    return [get(f"{PROXY}/")[2] for _ in range(n)]


def alternating(seen):
    return set(seen) == {"Hello world!", "Howdy world!"} and all(a != b for a, b in zip(seen, seen[1:]))


@pytest.fixture(scope="module")
def fresh(lab):
    from provision.lab import api
    api.reset(log=lambda m: None)
    return lab


def test_check_on_fresh_hosts_reports_changes_and_touches_nothing(fresh, tmp_path):
    out = tmp_path / "check.json"
    proc = invoke("deploy", "-i", "inventory/lab.yml", "--check", "--json", str(out), check=0)
    counts = recap(proc.stdout)
    assert set(counts) == HOSTS
    assert all(c["changed"] > 0 and c["failed"] == 0 for c in counts.values()), proc.stdout
    result = json.loads(out.read_text())
    assert any(s["reason"].startswith("would change") for s in result["hosts"]["proxy"]["steps"])
    for host in fresh.hosts:
        status = ssh(fresh, host, "dpkg-query -W -f '${db:Status-Status}\\n' apache2 python3-venv 2>/dev/null; true")
        assert "installed" not in status.stdout.split(), f"{host}: {status.stdout}"
        for path in ("/opt/provision", "/var/lib/provision", "/etc/apache2"):
            assert ssh(fresh, host, f"test -e {path}", check=False).returncode == 1, f"{host}: {path} exists"


def test_cold_deploy_alternates_backends(fresh):
    proc = invoke("deploy", "-i", "inventory/lab.yml", check=0)
    counts = recap(proc.stdout)
    assert set(counts) == HOSTS, proc.stdout
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in counts.values()), proc.stdout
    seen = answers(10)
    assert alternating(seen), seen


def test_second_deploy_changes_nothing_and_restarts_nothing(fresh):
    before = {(h, u): unit_state(fresh, h, u) for h, units in {**APPS, "proxy": ["apache2"]}.items() for u in units}
    proc = invoke("deploy", "-i", "inventory/lab.yml", check=0)
    counts = recap(proc.stdout)
    assert set(counts) == HOSTS and all(c["changed"] == 0 for c in counts.values()), proc.stdout
    after = {k: unit_state(fresh, *k) for k in before}
    assert after == before


def test_proxy_modules_loaded(fresh):
    out = ssh(fresh, "proxy", "apache2ctl -M 2>&1").stdout
    for mod in ("proxy_module", "proxy_http_module", "proxy_balancer_module", "lbmethod_byrequests_module"):
        assert f" {mod} (shared)" in out


def test_proxy_pass_reverse_and_preserve_host(fresh):
    status, headers, _ = get(f"{PROXY}/go")
    assert status in (301, 302) and headers["Location"] == f"{PROXY}/whoami"
    _, _, body = get(f"{PROXY}/whoami", host_header="shop.example.test")
    assert json.loads(body)["host"] == "shop.example.test"


def test_mode_switch_is_one_graceful_reload(fresh):
    pid = unit_state(fresh, "proxy", "apache2")["MainPID"]
    invoke("deploy", "--mode", "single", check=0)
    assert set(answers(6)) == {"Hello world!"}
    assert unit_state(fresh, "proxy", "apache2")["MainPID"] == pid
    proc = invoke("deploy", "--mode", "balancer", check=0)
    # proxy_hcheck again (the balancer's health checks; single mode has none), the routes file, one reload
    assert "proxy | changed | apache modules proxy proxy_http proxy_balancer lbmethod_byrequests headers: " \
           "enabled proxy_hcheck" in proc.stdout, proc.stdout
    assert recap(proc.stdout)["proxy"]["changed"] == 3
    assert alternating(answers(10))
    assert unit_state(fresh, "proxy", "apache2")["MainPID"] == pid


def test_killed_app_comes_back_within_5s(fresh):
    unit = "provision-app-hello.service"
    pid = unit_state(fresh, "web1", unit)["MainPID"]
    ssh(fresh, "web1", f"kill -9 {pid}")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        now = unit_state(fresh, "web1", unit)["MainPID"]
        if now not in ("0", pid) and ssh(fresh, "web1", "curl -s http://10.123.0.11:8080/", check=False).stdout \
                == "Hello world!":
            break
        time.sleep(0.2)
    else:
        pytest.fail("hello did not come back within 5 s")
    print(f"back after {5 - (deadline - time.monotonic()):.1f} s")
