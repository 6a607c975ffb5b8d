"""inventory/tutorial.yml is the tutorial's own topology: one server runs Apache and both apps on
localhost. Its rendered vhost holds the tutorial's Example 1 (single) and Example 2 (balancer);
the smoke check and verify reach the proxy where clients do; a failed smoke check is counted."""
import http.client
import io
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from provision import deploy, report, verify
from provision.engine import HostResult, StepResult
from provision.inventory import load
from provision.platforms import DEBIAN, REDHAT
from provision.roles import proxy

ROOT = Path(__file__).resolve().parents[3]

# "How To Use Apache as a Reverse Proxy with mod_proxy on CentOS 7" (DigitalOcean), Step 4:
# https://www.digitalocean.com/community/tutorials/how-to-use-apache-as-a-reverse-proxy-with-mod_proxy-on-centos-7
# Example 1 — Reverse Proxying a Single Backend Server:
TUTORIAL_EXAMPLE_1 = """
<VirtualHost *:80>
    ProxyPreserveHost On

    ProxyPass / http://127.0.0.1:8080/
    ProxyPassReverse / http://127.0.0.1:8080/
</VirtualHost>
"""
# Example 2 — Load Balancing Across Multiple Backend Servers:
TUTORIAL_EXAMPLE_2 = """
<VirtualHost *:80>
<Proxy balancer://mycluster>
    BalancerMember http://127.0.0.1:8080
    BalancerMember http://127.0.0.1:8081
</Proxy>

    ProxyPreserveHost On

    ProxyPass / balancer://mycluster/
    ProxyPassReverse / balancer://mycluster/
</VirtualHost>
"""
# Worker parameters we add to the tutorial's lines, on purpose: a failed app sits out `retry`
# seconds (not 60), connecting gives up after 2 s, a request after 30 s.
WORKER_PARAMETERS = {"retry", "connectiontimeout", "timeout", "route", "status"}     # status: the drain variable


@dataclass
class Opts:
    mode: str | None = None


@pytest.fixture
def tutorial():
    return load(ROOT / "inventory/tutorial.yml")


def rendered(inventory, mode, platform=REDHAT) -> list[list[str]]:
    """The proxy's :80 vhost with the routes file put in place of its Include, as directives."""
    host = inventory.hosts["proxy"]
    vhost = proxy.vhost(host, platform, Opts(mode))
    for path, text in proxy.routes(host, platform, inventory, Opts(mode)).items():
        vhost = vhost.replace(f"Include {path}", text)
    return verify.directives(vhost)


def matches(tutorial_line: list[str], ours: list[str]) -> bool:
    """Our directive is the tutorial's, word for word, plus only our worker parameters."""
    extra = ours[len(tutorial_line):]
    return ours[:len(tutorial_line)] == tutorial_line and all(w.split("=")[0] in WORKER_PARAMETERS for w in extra)


def test_tutorial_inventory_is_one_server_proxy_and_backend(tutorial):
    assert list(tutorial.hosts) == ["proxy"]
    host = tutorial.hosts["proxy"]
    assert sorted(host.groups) == ["backends", "proxies"]
    assert (host.address, host.private_address) == ("10.123.0.10", "127.0.0.1")
    assert [(a["name"], a["port"]) for a in host.apps] == [("hello", 8080), ("howdy", 8081)]


@pytest.mark.parametrize("platform", [REDHAT, DEBIAN], ids=["centos7", "debian"])
def test_single_mode_renders_example_1_line_by_line(tutorial, platform):
    ours = rendered(tutorial, "single", platform)
    want = verify.directives(TUTORIAL_EXAMPLE_1)
    at = 0
    for line in want:                       # each tutorial line, in the tutorial's order
        while at < len(ours) and not matches(line, ours[at]):
            at += 1
        assert at < len(ours), f"{' '.join(line)!r} missing (or out of order) in {ours}"
        at += 1
    assert not any(d[0] == "ProxyPass" and d[1] == "/" and "balancer://" in d[2] for d in ours)


def test_balancer_mode_renders_example_2(tutorial):
    ours = rendered(tutorial, "balancer")
    for line in verify.directives(TUTORIAL_EXAMPLE_2):
        assert any(matches(line, d) for d in ours), f"{' '.join(line)!r} missing in {ours}"
    members = [d[1] for d in ours if d[0] == "BalancerMember"]
    assert members == ["http://127.0.0.1:8080", "http://127.0.0.1:8081"]


def test_client_url_is_public_url_else_ansible_host_never_private(tutorial):
    host = tutorial.hosts["proxy"]
    assert proxy.client_url(host) == "http://10.123.0.10/"
    assert proxy.client_url(host, "10.9.9.9") == "http://10.9.9.9/"    # ssh_config's HostName
    host.vars["public_url"] = "https://www.example.test:8443/shop"
    assert proxy.client_url(host) == "https://www.example.test:8443/shop/"
    assert deploy.smoke_url(host) == "https://www.example.test:8443/shop/"
    host.vars.pop("public_url")
    host.vars.update(tls="self-signed", tls_redirect=True)              # :80 only redirects
    assert deploy.smoke_url(host) == "https://10.123.0.10/"
    host.vars.pop("tls"), host.vars.pop("tls_redirect")
    host.address = "fd00::10"
    assert proxy.client_url(host) == "http://[fd00::10]/"


def test_verify_probes_the_client_url(tutorial):
    (p,) = verify.plan(tutorial, lookup=lambda h: {}).proxies
    assert (p.base, p.https_url, p.address) == ("http://10.123.0.10/", "https://10.123.0.10/", "10.123.0.10")
    (app_hello, app_howdy) = verify.plan(tutorial, lookup=lambda h: {}).apps
    assert app_hello.member.url() == "http://127.0.0.1:8080"              # checked on the host itself
    tutorial.hosts["proxy"].vars["public_url"] = "http://shop.example.test:8000/"
    (p,) = verify.plan(tutorial, lookup=lambda h: {}).proxies
    assert (p.base, p.address) == ("http://shop.example.test:8000/", "shop.example.test")
    tutorial.hosts["proxy"].vars["public_url"] = "shop.example.test"
    with pytest.raises(ValueError, match="host 'proxy': field 'public_url' must be an http:// or https:// URL"):
        verify.plan(tutorial, lookup=lambda h: {})


def test_failed_smoke_check_is_counted_in_recap_json_and_exit_code():
    results = [HostResult("proxy", [StepResult("file /etc/httpd/conf.d/provision-proxy.conf", "ok")]),
               HostResult("web1", [StepResult("service x", "ok")])]
    assert report.exit_code(results) == 0
    report.add_checks(results, {"proxy": StepResult("smoke GET http://10.123.0.10/", "failed",
                                                    "[Errno 111] Connection refused")})
    out = io.StringIO()
    report.Reporter(stream=out).recap(results)
    lines = out.getvalue().splitlines()
    assert "proxy ok=1 changed=0 failed=1 unreachable=0 skipped=0" in lines
    assert "web1 ok=1 changed=0 failed=0 unreachable=0 skipped=0" in lines
    hosts = json.loads(report.to_json(results))["hosts"]
    assert (hosts["proxy"]["failed"], hosts["web1"]["failed"]) == (1, 0)
    assert hosts["proxy"]["steps"][-1] == {"step": "smoke GET http://10.123.0.10/", "status": "failed",
                                           "reason": "[Errno 111] Connection refused", "output": "", "diff": ""}
    assert report.exit_code(results) == 2


def test_smoke_check_dials_the_client_url_and_reports_a_failure(tutorial, monkeypatch):
    dialed = []

    class Refused:
        def __init__(self, host, port, timeout):
            dialed.append((host, port))

        def request(self, *a, **kw):
            raise ConnectionRefusedError(111, "Connection refused")

        def close(self):
            pass
    monkeypatch.setattr(http.client, "HTTPConnection", Refused)
    out = io.StringIO()
    host = tutorial.hosts["proxy"]
    steps = deploy.smoke_check([host], set(), {"Hello world!"}, report.Reporter(stream=out), tutorial,
                               timeout=0.1, addresses={"proxy": "10.123.0.10"})
    assert set(dialed) == {("10.123.0.10", 80)}                          # never 127.0.0.1
    assert steps["proxy"].status == "failed" and "Connection refused" in steps["proxy"].reason
    assert out.getvalue().startswith("proxy | failed | smoke: GET http://10.123.0.10/: ")
