"""WebSocket routes: the model, the rendering on httpd 2.4.6 (mod_proxy_wstunnel, ws:// members) and on
2.4.47+ (upgrade=websocket), chosen at plan time by the Apache version fact, and the modules that follow."""
import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from provision.facts import Facts, FileState, apache_version
from provision.inventory import load
from provision.platforms import DEBIAN, REDHAT, SUPPORTED_RELEASES
from provision.resources import ApacheModules, File, FileByFacts
from provision.roles import backends, proxy
from provision.verify import directives

ROOT = Path(__file__).resolve().parents[3]
SITES = ROOT / "inventory" / "sites.yml"
OPTIONS = SimpleNamespace(mode=None)
APP_SITE = "site-app.example.test.inc"
CENTOS7 = {"ID": "centos", "VERSION_ID": "7"}
DEBIAN12 = {"ID": "debian", "VERSION_ID": "12"}


def facts(platform, os_release, **kw):
    return Facts(os=os_release, platform=platform, **kw)


def app_routes(platform, upgrade):
    inv = load(SITES)
    files = proxy.routes(inv.hosts["proxy"], platform, inv, OPTIONS, proxy.ApacheForm(upgrade=upgrade))
    return directives(next(text for path, text in files.items() if path.endswith(APP_SITE)))


def ws_balancer(found):
    start = found.index(["<Proxy", "balancer://web.ws>"])
    return found[start + 1:found.index(["</Proxy>"], start)]


@pytest.mark.parametrize("platform", [DEBIAN, REDHAT])
def test_httpd_246_tunnels_ws_members_through_wstunnel(platform):
    found = app_routes(platform, upgrade=False)
    assert ws_balancer(found) == [
        ["BalancerMember", "ws://10.123.0.11:8080", "route=web1-hello", "retry=30", "connectiontimeout=2", "timeout=5",
         "status=${provision_member_10_2e123_2e0_2e11_3a8080}"],
        ["BalancerMember", "ws://10.123.0.12:8081", "route=web2-howdy", "retry=30", "connectiontimeout=2", "timeout=5",
         "status=${provision_member_10_2e123_2e0_2e12_3a8081}"],
        ["ProxySet", "lbmethod=byrequests", "failonstatus=502,503", "failontimeout=On", "stickysession=ROUTEID"]]
    assert not any("upgrade=websocket" in d for d in found)
    passes = [d[1:] for d in found if d[0] == "ProxyPass"]
    assert passes.index(["/ws", "balancer://web.ws/ws"]) < passes.index(["/", "balancer://web/"])
    assert ["ProxyPassReverse", "/ws", "balancer://web.ws/ws"] not in found


def test_httpd_2447_upgrades_http_members():
    found = app_routes(DEBIAN, upgrade=True)
    members = ws_balancer(found)[:2]
    assert [m[1] for m in members] == ["http://10.123.0.11:8080", "http://10.123.0.12:8081"]
    assert all(m[-1] == "upgrade=websocket" for m in members)
    assert ["ProxyPass", "/ws", "balancer://web.ws/ws"] in found
    # the HTTP pool itself is unchanged
    web = found[found.index(["<Proxy", "balancer://web>"]) + 1]
    assert web == ["BalancerMember", "http://10.123.0.11:8080", "route=web1-hello", "retry=30",
                   "connectiontimeout=2", "timeout=5", "status=${provision_member_10_2e123_2e0_2e11_3a8080}"]
    # the twin shares the member's drain variable, so a recorded drain holds in both balancers
    assert members[0][-2] == "status=${provision_member_10_2e123_2e0_2e11_3a8080}"


def test_site_without_websocket_routes_has_no_ws_balancer():
    inv = load(SITES)
    files = proxy.routes(inv.hosts["proxy"], DEBIAN, inv, OPTIONS, proxy.ApacheForm(upgrade=True))
    api = files["/etc/apache2/provision/site-api.example.test.inc"]
    assert ".ws" not in api and "WebSocket" not in api


UNKNOWN = {"ID": "debian", "VERSION_ID": "14"}       # a release the version table does not know


@pytest.mark.parametrize("installed", [None, "2.4.6-99.el7.centos.1", "2.4.71-1~deb12u1", "1:2.4.66-1"])
@pytest.mark.parametrize("os_release,want", [
    (CENTOS7, (2, 4, 6)), (DEBIAN12, (2, 4, 71)), ({"ID": "rocky", "VERSION_ID": "8.9"}, (2, 4, 37)),
    ({"ID": "ubuntu", "VERSION_ID": "24.04"}, (2, 4, 58)), (UNKNOWN, None)])
def test_apache_version_is_the_releases_whatever_is_installed(os_release, want, installed):
    platform = REDHAT if os_release["ID"] in ("centos", "rocky") else DEBIAN
    packages = {platform.apache_packages[0]: installed} if installed else {}
    assert apache_version(facts(platform, os_release, packages=packages)) == want


def test_every_supported_release_has_its_apache_version():
    missing = [(os_id, v) for os_id, versions in SUPPORTED_RELEASES.items() for v in versions
               if apache_version(facts(DEBIAN, {"ID": os_id, "VERSION_ID": v})) is None]
    assert missing == []


def routes_step(platform):
    inv = load(SITES)
    steps = proxy.resources(inv.hosts["proxy"], platform, inv, OPTIONS)
    return next(s for s in steps if isinstance(s, FileByFacts) and s.path.endswith(APP_SITE))


@pytest.mark.parametrize("platform,os_release,upgrade", [
    (REDHAT, CENTOS7, False),
    (DEBIAN, DEBIAN12, True),
    (DEBIAN, {"ID": "debian", "VERSION_ID": "11"}, True),
    (REDHAT, {"ID": "almalinux", "VERSION_ID": "8.10"}, False),
    (DEBIAN, UNKNOWN, False),     # unknown: what every 2.4 understands
])
def test_routes_file_is_chosen_by_the_release(platform, os_release, upgrade):
    step = routes_step(platform)
    change = step.plan(facts(platform, os_release))
    text = change.new_content.decode()
    assert ("upgrade=websocket" in text) == upgrade and ("ws://" in text) == (not upgrade)
    # planning again against the file just written changes nothing
    written = FileState("file", "644", "root", "root", hashlib.sha256(change.new_content).hexdigest())
    again = step.plan(facts(platform, os_release, files={step.path: written}))
    assert not again.changed, again.reason
    # without facts (the CentOS 7 tree), the content is the wstunnel rendering
    assert b"ws://10.123.0.11:8080" in step.content


def test_unknown_release_second_deploy_changes_nothing():
    """First deploy: Apache not installed yet; second: Apache 2.4.66 installed. Both plan the same
    routes file and the same modules, so the second deploy is a no-op."""
    before, after = {}, {"apache2": "2.4.66-1"}
    step = routes_step(DEBIAN)
    first = step.plan(facts(DEBIAN, UNKNOWN, packages=before))
    written = FileState("file", "644", "root", "root", hashlib.sha256(first.new_content).hexdigest())
    second = step.plan(facts(DEBIAN, UNKNOWN, packages=after, files={step.path: written}))
    assert first.changed and not second.changed, second.reason
    modules = modules_step()
    enabled = {"proxy", "proxy_http", "proxy_balancer", "lbmethod_byrequests", "headers"}
    assert "a2enmod -q proxy_wstunnel" in modules.plan(facts(DEBIAN, UNKNOWN, packages=before,
                                                             apache_modules=enabled)).script
    mark = {f"{modules.marks}/proxy_wstunnel": FileState("file", "644", "root", "root", "")}
    again = modules.plan(facts(DEBIAN, UNKNOWN, packages=after, apache_modules=enabled | {"proxy_wstunnel"},
                               files=mark))
    assert not again.changed, again.script


def modules_step(enable=True):
    """The modules the proxy prepares (enable), or those its switch turns off again."""
    inv = load(SITES)
    return next(s for s in proxy.resources(inv.hosts["proxy"], DEBIAN, inv, OPTIONS)
                if isinstance(s, ApacheModules) and s.enable == enable)


def test_wstunnel_is_enabled_before_2447_only():
    step = modules_step()
    enabled = {"proxy", "proxy_http", "proxy_balancer", "lbmethod_byrequests", "headers"}
    old = step.plan(facts(DEBIAN, {"ID": "ubuntu", "VERSION_ID": "20.04"}, apache_modules=enabled))   # 2.4.41
    assert "a2enmod -q proxy_wstunnel" in old.script and "/modules/proxy_wstunnel" in old.script
    new = step.plan(facts(DEBIAN, DEBIAN12, apache_modules=enabled | {"proxy_hcheck"}))   # active health: test_hcheck.py
    assert not new.changed, new.script


def test_wstunnel_provision_enabled_is_disabled_again_when_not_needed():
    step = modules_step(enable=False)
    mark = f"{step.marks}/proxy_wstunnel"
    enabled = {"proxy", "proxy_http", "proxy_balancer", "lbmethod_byrequests", "headers", "proxy_wstunnel",
               "proxy_hcheck"}
    marked = {mark: FileState("file", "644", "root", "root", "")}
    # Debian 12 (2.4.71): upgrade=websocket, no tunnel module needed
    change = step.plan(facts(DEBIAN, DEBIAN12, apache_modules=enabled, files=marked))
    assert "a2dismod -q proxy_wstunnel" in change.script
    # one enabled by someone else (no mark) is left alone
    other = step.plan(facts(DEBIAN, DEBIAN12, apache_modules=enabled))
    assert not other.changed


def test_redhat_dropin_asks_for_wstunnel_only_with_a_websocket_route():
    inv = load(SITES)
    assert "proxy_wstunnel" in proxy.modules(inv.hosts["proxy"], OPTIONS, REDHAT)
    assert "proxy_wstunnel" not in proxy.modules(load(ROOT / "inventory" / "lab.yml").hosts["proxy"], OPTIONS, REDHAT)


def gunicorn_confs(path):
    """Each backend app's gunicorn.conf.py, as planned: (host, app) -> text."""
    inv = load(path)
    found = {}
    for host in inv.group("backends"):
        platform = DEBIAN
        for step in backends.resources(host, platform, inv, OPTIONS):
            if isinstance(step, File) and step.path.endswith("/gunicorn.conf.py"):
                found[(host.name, step.path.split("/")[-2])] = step.content.decode()
    return found


def test_only_apps_behind_a_websocket_route_get_threads():
    sync, threaded = backends.gunicorn_conf(False), backends.gunicorn_conf(True)
    assert "worker_class" not in sync and "def worker_exit" in sync         # gunicorn's default: sync
    assert 'worker_class = "gthread"' in threaded and "keepalive = 0" in threaded
    assert gunicorn_confs(SITES) == {("web1", "hello"): threaded, ("web2", "howdy"): threaded,
                                     ("web2", "api"): sync}         # pool api has no WebSocket route
    lab = gunicorn_confs(ROOT / "inventory" / "lab.yml")
    assert lab and set(lab.values()) == {sync}                      # the short form: as before


def test_threaded_conf_loads_and_closes_every_connection():
    """The file is valid Python that gunicorn reads as settings: gthread, 16 threads, no keep-alive."""
    scope = {}
    exec(compile(backends.gunicorn_conf(True), "gunicorn.conf.py", "exec"), scope)
    assert (scope["worker_class"], scope["threads"], scope["keepalive"]) == ("gthread", 16, 0)
    assert callable(scope["post_worker_init"]) and scope["control_socket_disable"] is True


def test_sync_conf_drains_the_listener_only_for_a_worker_told_to_stop():
    """A worker gunicorn replaces (SIGABRT after `timeout`, a crash) must leave the shared listener
    alone; one stopped by SIGTERM serves its queue, then shuts the listener down."""
    import signal

    class Listener:
        def __init__(self):
            self.calls = []
            self.sock = self

        def shutdown(self, how):
            self.calls.append("shutdown")

        def close(self):
            self.calls.append("close")

    class Worker:
        def __init__(self):
            self.sockets = [Listener()]

        def handle_exit(self, sig, frame):
            pass

        def accept(self, listener):
            raise BlockingIOError

    scope = {}
    exec(compile(backends.gunicorn_conf(False), "gunicorn.conf.py", "exec"), scope)
    replaced = Worker()
    scope["worker_exit"](None, replaced)
    assert replaced.sockets[0].calls == []
    stopped = Worker()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        scope["post_worker_init"](stopped)
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)
    finally:
        signal.signal(signal.SIGTERM, previous)
    scope["worker_exit"](None, stopped)
    assert stopped.sockets[0].calls == ["shutdown", "close"]
