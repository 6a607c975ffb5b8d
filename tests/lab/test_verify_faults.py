"""`invoke verify` on the lab: it passes on a fresh deploy, writes one JUnit test case per check per
host, and catches real faults, one at a time, naming the host and the check; `deploy` repairs each
fault and verify passes again."""
import time
import xml.etree.ElementTree as ET

import pytest

from provision.platforms import DEBIAN

from conftest import invoke, ssh

pytestmark = pytest.mark.lab

ROUTES = DEBIAN.routes_path
PROXY_CHECKS = ("test_apache_installed", "test_apache_running", "test_apache_enabled", "test_port_80_listening",
                "test_proxy_modules_loaded", "test_configtest", "test_vhost_directives",
                "test_requests_reach_apps", "test_redirect_on_proxy_address", "test_host_header_preserved",
                "test_routes_answer_from_their_pool", "test_sticky_pools_keep_a_client_on_one_member",
                "test_access_log_names_site_worker_and_time", "test_websocket_routes_switch_protocols")
APP_CHECKS = ("test_app_running", "test_app_enabled", "test_app_runs_as_its_user", "test_app_listening",
              "test_app_answers")
LAB_IDS = {"proxy": PROXY_CHECKS, "web1-hello": APP_CHECKS, "web2-howdy": APP_CHECKS}


def run_verify(tmp_path, *extra):
    report = tmp_path / "report.xml"
    started = time.monotonic()
    proc = invoke("verify", "-i", "inventory/lab.yml", "--junit", str(report), *extra)
    took = time.monotonic() - started
    cases = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        failure = case.find("failure")
        error = case.find("error")
        bad = failure if failure is not None else error
        cases[case.get("name")] = None if bad is None else (bad.get("message") or "") + (bad.text or "")
    return proc, cases, took


def test_verify_passes_on_a_deployed_lab_with_one_junit_case_per_check_per_host(deployed, tmp_path):
    proc, cases, took = run_verify(tmp_path)
    print(f"invoke verify: {len(cases)} checks, exit {proc.returncode}, {took:.1f} s")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    want = {f"{check}[{host}]" for host, checks in LAB_IDS.items() for check in checks}
    assert set(cases) == want
    assert len(cases) >= 15 and all(v is None for v in cases.values())
    assert "verify took" in proc.stdout


def test_limit_and_mode_reach_the_suite(deployed, tmp_path):
    proc, cases, _ = run_verify(tmp_path, "--limit", "web2")
    assert proc.returncode == 0 and set(cases) == {f"{c}[web2-howdy]" for c in APP_CHECKS}
    # the lab runs in balancer mode: expecting single mode must fail on the proxy, and say why
    proc, cases, _ = run_verify(tmp_path, "--limit", "proxies", "--mode", "single")
    assert proc.returncode == 2         # a check failed
    assert "proxy: vhost (single mode): routes lack 'ProxyPass / http://10.123.0.11:8080/'" \
        in cases["test_vhost_directives[proxy]"]


# (fault, host broken, command, failing check (test id), text its message must hold)
FAULTS = [
    ("backend-stopped", "web1", "systemctl stop provision-app-hello.service",
     "test_app_running[web1-hello]", "web1: service provision-app-hello.service is not running"),
    ("module-disabled", "proxy", "a2dismod -f proxy_balancer",
     "test_proxy_modules_loaded[proxy]", "proxy: apache2ctl -M lacks proxy_balancer_module"),
    ("wrong-port", "proxy", f"sed -i 's/:8080 /:8089 /' {ROUTES} && systemctl reload apache2",
     "test_vhost_directives[proxy]", "proxy: vhost (balancer mode): routes lack 'BalancerMember "
                                     "http://10.123.0.11:8080'"),
    ("apache-stopped", "proxy", "systemctl stop apache2",
     "test_apache_running[proxy]", "proxy: service apache2 is not running"),
    ("message-changed", "web1", "sed -i 's/Hello world!/Goodbye world!/' /opt/provision/apps/hello/app.py"
                                " && systemctl restart provision-app-hello.service",
     "test_app_answers[web1-hello]", "web1: curl http://10.123.0.11:8080/ answered 'Goodbye world!'"),
    ("preserve-host-removed", "proxy", f"sed -i '/ProxyPreserveHost/d' {ROUTES} && systemctl reload apache2",
     "test_vhost_directives[proxy]", "proxy: vhost (balancer mode): routes lack 'ProxyPreserveHost On'"),
]


@pytest.mark.parametrize("fault, host, command, check, text", FAULTS, ids=[f[0] for f in FAULTS])
def test_verify_catches_fault_and_deploy_repairs_it(deployed, tmp_path, fault, host, command, check, text):
    try:
        ssh(deployed, host, command)
        proc, cases, took = run_verify(tmp_path)
        failed = sorted(name for name, msg in cases.items() if msg is not None)
        print(f"{fault}: verify exit {proc.returncode} in {took:.1f} s, failed: {', '.join(failed)}")
        assert proc.returncode == 2, proc.stdout[-3000:]       # a check failed
        assert cases[check] is not None, f"{check} passed despite {fault}; failed: {failed}"
        assert text in cases[check], cases[check]
        assert text in proc.stdout                  # the operator sees it too
        if fault == "preserve-host-removed":        # the end-to-end check sees the effect
            assert "the app saw Host" in (cases["test_host_header_preserved[proxy]"] or "")
    finally:
        repaired = invoke("deploy", "-i", "inventory/lab.yml", "--mode", "balancer")
    assert repaired.returncode == 0, f"deploy did not repair {fault}:\n{repaired.stdout[-3000:]}"
    proc, cases, _ = run_verify(tmp_path)
    assert proc.returncode == 0, f"after deploy repaired {fault}, verify still fails:\n{proc.stdout[-3000:]}"
