"""Checks of a deployed fleet with pytest-testinfra, over SSH with deploy's settings.

Run `provision verify`, or alone: `pytest tests/infra --inventory inventory/lab.yml [--limit H] [--mode M]`.
Tests take `proxy` (a verify.ProxyCheck per proxy host) or `app` (a verify.AppCheck per backend
app); `remote` is that host as a testinfra Host, one SSH master connection per host for the run.
"""
import http.client
import json
import ssl
import time
from urllib.parse import urlsplit

import pytest
import testinfra

from provision import verify
from provision.errors import UserError
from provision.facts import UnsupportedHost, parse_os_release, platform_for
from provision.inventory import PROXY_MODES, InventoryError, load

PLAN = pytest.StashKey()
SSH = pytest.StashKey()
_platforms = {}


def pytest_addoption(parser):
    group = parser.getgroup("provision", "provision verify")
    group.addoption("--inventory", action="append", default=None,
                    help="inventory file, folder or script; repeat to merge several in order (default inventory/lab.yml)")
    group.addoption("--limit", default=None, help="an Ansible host pattern")
    group.addoption("--extra-vars", action="append", default=[], help="as -e: key=value, YAML/JSON or @FILE")
    group.addoption("--unreachable", default=None,
                    help="a JSON file: host -> why it cannot be logged in to (its checks are skipped)")
    group.addoption("--mode", default=None, choices=PROXY_MODES,
                    help="proxy mode to expect (default: the inventory's proxy_mode, else balancer)")


def pytest_configure(config):
    try:
        plan = verify.plan(load(config.getoption("--inventory") or ["inventory/lab.yml"],
                                config.getoption("--extra-vars")),
                           config.getoption("--limit"), config.getoption("--mode"))
    except (InventoryError, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[PLAN] = plan
    try:
        config.stash[SSH] = verify.SshSettings(plan.hosts)
    except UserError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_unconfigure(config):
    ssh = config.stash.get(SSH, None)
    if ssh is not None:
        ssh.close()


def pytest_generate_tests(metafunc):
    plan = metafunc.config.stash[PLAN]
    if "proxy" in metafunc.fixturenames:
        metafunc.parametrize("proxy", plan.proxies, ids=[p.name for p in plan.proxies])
    if "app" in metafunc.fixturenames:
        metafunc.parametrize("app", plan.apps, ids=[a.id for a in plan.apps])
    if "tls_proxy" in metafunc.fixturenames:
        tls = [p for p in plan.proxies if p.tls != "off"]
        metafunc.parametrize("tls_proxy", tls, ids=[p.name for p in tls])


def pytest_collection_modifyitems(config, items):
    """Checks for a role no chosen host has (--limit) are left out, not reported as skipped."""
    plan = config.stash[PLAN]
    empty = {"proxy"} if not plan.proxies else set()
    empty |= {"app"} if not plan.apps else set()
    empty |= {"tls_proxy"} if not any(p.tls != "off" for p in plan.proxies) else set()
    dropped = [i for i in items if empty & set(getattr(i, "fixturenames", ()))]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in dropped]
    path = config.getoption("--unreachable")
    unreachable = json.loads(open(path).read()) if path else {}
    for item in items:
        host = host_of(item)
        if host in unreachable:
            item.add_marker(pytest.mark.skip(reason=f"{host} is unreachable: {unreachable[host]}"))


def host_of(item) -> str | None:
    """The inventory host a check item checks (its proxy, tls_proxy or app parameter)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    target = next((params[r] for r in ("proxy", "tls_proxy", "app") if r in params), None)
    return getattr(target, "name", None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each report names its host (provision verify's --json groups the checks by host)."""
    outcome = yield
    outcome.get_result().provision_host = host_of(item)


@pytest.fixture
def remote(request):
    role = next(r for r in ("proxy", "tls_proxy", "app") if r in request.fixturenames)
    target = request.getfixturevalue(role)
    return testinfra.get_host(target.spec, ssh_config=request.config.stash[SSH].path, controlpersist=0)


@pytest.fixture
def platform(remote):
    """The host's OS family table, from its /etc/os-release (read once per host)."""
    spec = remote.backend.get_pytest_id()
    if spec not in _platforms:
        try:
            _platforms[spec] = platform_for(parse_os_release(remote.file("/etc/os-release").content_string))
        except UnsupportedHost as exc:
            pytest.fail(f"{spec}: {exc}", pytrace=False)
    return _platforms[spec]


class NamedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to an address that asks for (SNI) and checks the certificate of another
    name, as a client that resolved that name to the address would."""

    def __init__(self, *args, server_name=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.server_name = server_name

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_name or self.host)


def _get(url, path, host=None, timeout=5.0, cafile=None, headers=None, server_name=None):
    """GET `path` below the base `url` (http or https; https checked against cafile, else the
    system's CAs, as `server_name` when given, which is then the Host too unless `host` says)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        port = parts.port or 443
        conn = NamedHTTPSConnection(parts.hostname, port, timeout=timeout, server_name=server_name,
                                    context=ssl.create_default_context(cafile=cafile))
        host = host or server_name
    else:
        port = parts.port or 80
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    try:
        conn.request("GET", parts.path.rstrip("/") + path,
                     headers={**({"Host": host} if host else {}), **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read().decode("utf-8", "replace")
    except OSError as exc:
        return 0, {}, f"no answer from {parts.hostname}:{port} ({exc})"
    finally:
        conn.close()


@pytest.fixture
def http_get():
    """GET from this machine, redirects not followed: http_get(url, path, host=None, cafile=None,
    headers=None) -> (status, headers, body); status 0 and the reason as body when nothing answered.
    `url` is a proxy's base URL (ProxyCheck.base or .https_url); over https the certificate is
    checked against cafile."""
    return _get


@pytest.fixture
def rotation():
    """rotation(proxy, url=None) -> the problem with the answers through the proxy (at url, else
    where its clients reach it), or None. A member that failed a moment ago (an app just restarted)
    sits out for `retry` seconds, so this polls that long before calling the rotation wrong."""
    def check(proxy, url=None):
        deadline = time.monotonic() + proxy.retry + 2
        while True:
            answers = []
            for _ in range(proxy.requests):
                status, _, body = _get(url or proxy.base, "/", cafile=proxy.trust,
                                       server_name=proxy.sni if (url or proxy.base).startswith("https:") else None)
                answers.append(body if status == 200 else f"HTTP {status}" if status else body)
            problem = verify.rotation_problem(answers, proxy)
            if problem is None or time.monotonic() > deadline or status == 0:
                return problem
            time.sleep(0.5)
    return check
