"""provision.sites: the long form's validation, the route order, and what the proxy role renders
from it; the short form keeps today's routes."""
import random
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from provision.inventory import InventoryError, load
from provision.platforms import DEBIAN, REDHAT
from provision.roles import proxy
from provision.sites import model
from provision.verify import directives

ROOT = Path(__file__).resolve().parents[3]
SITES = ROOT / "inventory" / "sites.yml"
OPTIONS = SimpleNamespace(mode=None)


def write(tmp_path, data) -> Path:
    p = tmp_path / "inv.yml"
    p.write_text(yaml.safe_dump(data))
    return p


def long_form(**proxy_vars):
    data = yaml.safe_load(SITES.read_text())
    data["all"]["vars"] = {}
    data["all"]["children"]["proxies"]["vars"].update(proxy_vars)
    return data


def test_sites_inventory_builds_two_sites_and_two_pools():
    inv = load(SITES)
    found = proxy.model(inv.hosts["proxy"], inv, OPTIONS)
    assert not found.short
    assert [s.names for s in found.sites] == [("app.example.test", "www.app.example.test"), ("api.example.test",)]
    web, api = found.pools
    assert [m.route for m in web.members] == ["web1-hello", "web2-howdy"] and web.sticky
    assert [m.url() for m in api.members] == ["http://10.123.0.12:8082"] and not api.sticky
    assert (web.timeout, web.retry, api.timeout, api.retry) == (5, 30, 30, 5)   # pool over role defaults
    assert [(r.path, r.kind) for r in found.sites[0].routes] == [("/static", "folder"), ("/api", "pool"),
                                                                ("/ws", "websocket"), ("/", "pool")]


def test_route_order_does_not_depend_on_the_order_written():
    routes = [model.Route("/", "pool", "web"), model.Route("/api", "pool", "api"),
              model.Route("/api/v2", "pool", "web"), model.Route("/static", "folder", folder="/srv/s"),
              model.Route("/a", "exclude"), model.Route("/api/ws", "websocket", "web"),
              model.Route("/w", "websocket", "web")]
    want = model.ordered(routes)
    assert [r.path for r in want] == ["/static", "/a", "/api/v2", "/api/ws", "/api", "/w", "/"]
    rng = random.Random(7)
    for _ in range(20):
        rng.shuffle(routes)
        assert model.ordered(routes) == want


def test_long_form_routes_file_puts_exclusions_and_longer_paths_first():
    inv = load(SITES)
    files = proxy.routes(inv.hosts["proxy"], REDHAT, inv, OPTIONS)
    assert list(files) == ["/etc/httpd/provision/site-app.example.test.inc",
                           "/etc/httpd/provision/site-api.example.test.inc"]
    app = directives(files["/etc/httpd/provision/site-app.example.test.inc"])
    passes = [d[1:] for d in app if d[0] == "ProxyPass"]
    assert passes == [["/balancer-manager", "!"], ["/server-status", "!"], ["/static", "!"],
                      ["/api", "balancer://api/api"], ["/ws", "balancer://web.ws/ws"], ["/", "balancer://web/"]]
    assert ["Alias", "/static", "/var/www/provision-static"] in app
    members = [d for d in app if d[0] == "BalancerMember"]
    assert members[0] == ["BalancerMember", "http://10.123.0.11:8080", "route=web1-hello", "retry=30",
                          "connectiontimeout=2", "timeout=5", "status=${provision_member_10_2e123_2e0_2e11_3a8080}"]
    assert members[2][1:] == ["http://10.123.0.12:8082", "retry=5", "connectiontimeout=2", "timeout=30",
                              "status=${provision_member_10_2e123_2e0_2e12_3a8082}"]  # no route=
    sets = [d for d in app if d[0] == "ProxySet"]
    assert sets[0][1:] == ["lbmethod=byrequests", "failonstatus=502,503", "failontimeout=On",
                           "stickysession=ROUTEID"]
    assert any(d[:3] == ["Header", "add", "Set-Cookie"] and d[-1] == "env=BALANCER_ROUTE_CHANGED" for d in app)
    api = directives(files["/etc/httpd/provision/site-api.example.test.inc"])
    assert "balancer://web>" not in {w for d in api for w in d}          # a site defines only its pools
    assert not any(d[0] == "Header" for d in api)


def test_raw_lines_come_before_every_route(tmp_path):
    data = long_form(proxy_extra_directives=["ProxyPass /api/private !"])
    inv = load(write(tmp_path, data))
    text = proxy.routes(inv.hosts["proxy"], DEBIAN, inv, OPTIONS)["/etc/apache2/provision/site-app.example.test.inc"]
    assert text.index("ProxyPass /api/private !") < text.index("ProxyPass /static !") < text.index("ProxyPass /api ")


def test_long_form_vhost_has_one_vhost_per_site_with_aliases_and_logs():
    inv = load(SITES)
    text = proxy.vhost(inv.hosts["proxy"], DEBIAN, OPTIONS)
    found = directives(text)
    assert ["ServerName", "proxy"] == found[0]                           # the global name, before any vhost
    assert [d[1] for d in found if d[0] == "ServerName"] == ["proxy", "app.example.test", "api.example.test"]
    assert ["ServerAlias", "www.app.example.test"] in found
    assert ["CustomLog", "/var/log/apache2/provision-app.example.test-access.log", "provision_proxy"] in found
    assert ["ErrorLog", "/var/log/apache2/provision-api.example.test-error.log"] in found
    assert [d[1] for d in found if d[0] == "Include"] == ["/etc/apache2/provision/site-app.example.test.inc",
                                                          "/etc/apache2/provision/site-api.example.test.inc"]
    assert found.count(["RequestHeader", "set", "X-Forwarded-Proto", "http"]) == 2
    fmt = next(line for line in text.splitlines() if line.startswith("LogFormat"))
    assert "%{BALANCER_WORKER_NAME}e" in fmt and "%D" in fmt and "%v" in fmt


def test_long_form_resources_make_the_folder_and_drop_the_short_form_routes():
    inv = load(SITES)
    steps = proxy.resources(inv.hosts["proxy"], DEBIAN, inv, OPTIONS)
    labels = [s.label for s in steps]
    assert "directory /var/www/provision-static" in labels
    vhost = labels.index(f"file {DEBIAN.vhost_path}")
    gone = labels.index(f"absent {DEBIAN.routes_path}")
    sites = [labels.index(f"file /etc/apache2/provision/site-{n}.inc") for n in ("app.example.test", "api.example.test")]
    assert max(sites) < vhost < gone          # new files, then the vhost that includes them, then the old file


@pytest.mark.parametrize("mode", ["balancer", "single"])
def test_short_form_is_one_site_one_pool_at_root(mode):
    inv = load(ROOT / "inventory" / "lab.yml")
    host = inv.hosts["proxy"]
    found = proxy.model(host, inv, SimpleNamespace(mode=mode))
    assert found.short and [s.server_name for s in found.sites] == ["proxy"]
    assert [(r.path, r.pool) for r in found.sites[0].routes] == [("/", "mycluster")]
    routes = proxy.routes(host, DEBIAN, inv, SimpleNamespace(mode=mode))
    assert list(routes) == [DEBIAN.routes_path]
    passes = [d for d in directives(routes[DEBIAN.routes_path]) if d[0] == "ProxyPass"][-1]
    if mode == "balancer":
        assert passes == ["ProxyPass", "/", "balancer://mycluster/"]
    else:
        assert passes == ["ProxyPass", "/", "http://10.123.0.11:8080/", "retry=5", "connectiontimeout=2",
                          "timeout=30"]
    labels = [s.label for s in proxy.resources(host, DEBIAN, inv, SimpleNamespace(mode=mode))]
    assert f"absent {DEBIAN.routes_path}" not in labels


def test_passive_health_is_on_by_default_and_can_be_turned_off(tmp_path):
    inv = load(ROOT / "inventory" / "lab.yml")
    text = proxy.routes(inv.hosts["proxy"], DEBIAN, inv, OPTIONS)[DEBIAN.routes_path]
    assert ["ProxySet", "lbmethod=byrequests", "failonstatus=502,503", "failontimeout=On"] in directives(text)
    data = yaml.safe_load((ROOT / "inventory" / "lab.yml").read_text())
    data["all"]["vars"] = {"balancer_failonstatus": [], "balancer_failontimeout": False}
    inv = load(write(tmp_path, data))
    text = proxy.routes(inv.hosts["proxy"], DEBIAN, inv, OPTIONS)[DEBIAN.routes_path]
    assert ["ProxySet", "lbmethod=byrequests"] in directives(text)


def test_members_options_render(tmp_path):
    data = long_form()
    data["all"]["children"]["proxies"]["vars"]["pools"]["web"]["members"] = [
        {"member": "web1", "loadfactor": 3}, {"member": "web2:howdy", "standby": True}]
    data["all"]["children"]["proxies"]["vars"]["pools"]["web"]["lbmethod"] = "bybusyness"
    inv = load(write(tmp_path, data))
    host = inv.hosts["proxy"]
    text = proxy.routes(host, DEBIAN, inv, OPTIONS)["/etc/apache2/provision/site-app.example.test.inc"]
    members = {d[1]: d for d in directives(text) if d[0] == "BalancerMember"}
    assert members["http://10.123.0.11:8080"][-2:] == ["loadfactor=3", "status=${provision_member_10_2e123_2e0_2e11_3a8080}"]
    assert members["http://10.123.0.12:8081"][-1] == "status=+H"
    assert "lbmethod_bybusyness" in proxy.modules(host, OPTIONS)


def test_tls_certificate_names_every_site():
    from provision import tls
    inv = load(SITES)
    dns, _ = tls.names(inv.hosts["proxy"])
    assert {"app.example.test", "www.app.example.test", "api.example.test"} <= set(dns)


def _proxies_vars(data):
    return data["all"]["children"]["proxies"]["vars"]


BAD = {
    "sites without pools": (lambda v: v.pop("pools"), "field 'pools' must be a mapping"),
    "unknown pool key": (lambda v: v["pools"]["web"].update(colour=1), "field 'pools.web.colour' is unknown"),
    "bad lbmethod": (lambda v: v["pools"]["web"].update(lbmethod="random"), "field 'pools.web.lbmethod'"),
    "bad timeout": (lambda v: v["pools"]["web"].update(timeout=0), "field 'pools.web.timeout' must be"),
    "bad status": (lambda v: v["pools"]["web"].update(failonstatus=[200]), "field 'pools.web.failonstatus'"),
    "empty members": (lambda v: v["pools"]["web"].update(members=[]), "field 'pools.web.members'"),
    "unknown member": (lambda v: v["pools"]["api"].update(members=["web9"]),
                       "field 'pools.api.members[0]' 'web9' names no app"),
    "unknown app": (lambda v: v["pools"]["api"].update(members=["web2:nope"]), "'web2:nope' names no app"),
    "member twice": (lambda v: v["pools"]["api"].update(members=["web2", "web2:api"]),
                     "web2:api is already a member"),
    "route to no pool": (lambda v: v["sites"][0]["routes"].append({"path": "/x", "pool": "nope"}),
                         "field 'sites[0].routes[4].pool' names no pool"),
    "two kinds": (lambda v: v["sites"][0]["routes"].append({"path": "/x", "pool": "web", "exclude": True}),
                  "field 'sites[0].routes[4]' must have exactly one of"),
    "same path twice": (lambda v: v["sites"][0]["routes"].append({"path": "/api/", "pool": "web"}),
                        "'/api/' is routed twice"),
    "bad path": (lambda v: v["sites"][0]["routes"].append({"path": "api x", "pool": "web"}),
                 "field 'sites[0].routes[4].path' must be a URL path"),
    "excluded root": (lambda v: v["sites"][1]["routes"].append({"path": "/", "exclude": True}),
                      "path' / cannot be excluded"),
    "relative folder": (lambda v: v["sites"][0]["routes"][2].update(folder="static"),
                        "field 'sites[0].routes[2].folder' must be an absolute folder"),
    "name twice": (lambda v: v["sites"][1].update(server_name="www.app.example.test"),
                   "name 'www.app.example.test' is already used"),
    "wildcard name": (lambda v: v["sites"][0].update(server_name="*.example.test"), "cannot hold a wildcard"),
    "bad alias": (lambda v: v["sites"][0].update(aliases=["a b"]), "field 'sites[0].aliases' must be a host name"),
    "unknown site key": (lambda v: v["sites"][0].update(tls="on"), "field 'sites[0].tls' is unknown"),
    "websocket to no pool": (lambda v: v["sites"][0]["routes"][3].update(websocket="nope"),
                             "field 'sites[0].routes[3].websocket' names no pool in 'pools': 'nope'"),
    "websocket not a name": (lambda v: v["sites"][0]["routes"][3].update(websocket=["web"]),
                             "field 'sites[0].routes[3].websocket' names no pool"),
    "websocket and pool": (lambda v: v["sites"][0]["routes"][3].update(pool="web"),
                           "field 'sites[0].routes[3]' must have exactly one of pool, folder, exclude, websocket"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_long_form_is_one_line(case, tmp_path):
    edit, message = BAD[case]
    data = long_form()
    edit(_proxies_vars(data))
    with pytest.raises(InventoryError) as err:
        load(write(tmp_path, data))
    text = str(err.value)
    assert "\n" not in text and message in text and f"{tmp_path / 'inv.yml'}: host 'proxy'" in text, text


def _check(path=SITES, mode=None):
    from provision import verify
    return verify.plan(load(path), mode=mode, lookup=lambda h: {}).proxies[0]


def test_verify_plans_the_default_site_and_its_root_pool():
    check = _check()
    assert check.server_name == "app.example.test"
    assert [(m.host, m.app) for m in check.members] == [("web1", "hello"), ("web2", "howdy")]   # not the api app
    assert _check(ROOT / "inventory" / "lab.yml").model.short


def test_verify_probes_every_route_below_its_path():
    from provision import verify
    found = verify.probes(_check().model)
    assert [(p.site, p.path, p.members) for p in found] == [
        ("app.example.test", "/static/provision-verify", ()),
        ("app.example.test", "/api/provision-verify", ("web2-api",)),
        ("app.example.test", "/", ("web1-hello", "web2-howdy")),
        ("api.example.test", "/", ("web2-api",))]
    api, static = found[1], found[0]
    assert verify.probe_problem(api, 404, "web2-api") is None
    assert "expected one of web2-api" in verify.probe_problem(api, 200, "web1-hello")
    assert verify.probe_problem(static, 404, None) is None
    assert "expected the proxy itself" in verify.probe_problem(static, 200, "web1-hello")
    assert "expected the proxy itself" in verify.probe_problem(static, 503, None)


def test_verify_site_problems_on_the_rendered_files():
    from provision import verify
    check = _check()
    inv = load(SITES)
    vhost = proxy.vhost(inv.hosts["proxy"], DEBIAN, OPTIONS)
    routes = proxy.routes(inv.hosts["proxy"], DEBIAN, inv, OPTIONS)
    assert verify.site_problems(vhost, routes, DEBIAN, check) == []
    app = "/etc/apache2/provision/site-app.example.test.inc"
    broken = {**routes, app: routes[app].replace("ProxyPass /static !", "")}
    assert verify.site_problems(vhost, broken, DEBIAN, check) == [f"{app} lacks 'ProxyPass /static !'"]
    missing = {**routes, app: None}
    assert verify.site_problems(vhost.replace("Include " + app, ""), missing, DEBIAN, check) == [
        f"vhost lacks 'Include {app}'", f"{app} is missing"]


def test_access_line_reads_our_format():
    from provision import verify
    line = ('app.example.test 10.123.0.1 - - [28/Nov/2026:08:00:00 +0000] "GET /x-1 HTTP/1.1" 404 207 "-" '
            '"python" worker=http://10.123.0.11:8080 us=1834')
    assert verify.access_line("other\n" + line + "\n", "/x-1") == {
        "site": "app.example.test", "status": "404", "worker": "http://10.123.0.11:8080", "us": "1834"}
    assert verify.access_line(line, "/nope") is None


GLOBAL_NEW = ("ServerName ", "LogFormat ", "# Server-wide:", "# access log format", "# time taken")
VHOST_NEW = ("    ErrorLog ", "    CustomLog ", "    RequestHeader set X-Forwarded-Proto http",
             "    # mod_proxy_http sends X-Forwarded-For")


def without_drain(routes: str) -> str:
    """The routes file without the drain's lines: its comment, Defines, include and status=${...}."""
    text = re.sub(r"# Drain that holds.*?\nIncludeOptional [^\n]*\n\n", "", routes, flags=re.S)
    return re.sub(r" status=\$\{provision_member_\w+\}", "", text)


def test_routes_define_each_member_undrained_then_include_the_drain_record():
    inv = load(ROOT / "inventory" / "lab.yml")
    routes = proxy.routes(inv.hosts["proxy"], DEBIAN, inv, SimpleNamespace(mode="balancer"))[DEBIAN.routes_path]
    found = directives(routes)
    defines = [d for d in found if d[0] in ("Define", "IncludeOptional")]
    assert defines == [["Define", "provision_member_10_2e123_2e0_2e11_3a8080", "-N"],
                       ["Define", "provision_member_10_2e123_2e0_2e12_3a8081", "-N"],
                       ["IncludeOptional", "/etc/apache2/provision/drained*.conf"]]
    members = [d for d in found if d[0] == "BalancerMember"]
    assert [d[-1] for d in members] == ["status=${provision_member_10_2e123_2e0_2e11_3a8080}",
                                        "status=${provision_member_10_2e123_2e0_2e12_3a8081}"]
    assert found.index(defines[-1]) < found.index(members[0])       # defined before use


@pytest.mark.parametrize("platform", [DEBIAN, REDHAT], ids=["debian", "redhat"])
@pytest.mark.parametrize("mode", ["balancer", "single"])
def test_short_form_is_todays_files_plus_the_new_defaults(platform, mode):
    """Today's files, plus the new defaults and the drain's status variables (ops.drain)."""
    inv = load(ROOT / "inventory" / "lab.yml")
    host, options = inv.hosts["proxy"], SimpleNamespace(mode=mode)
    before = ROOT / "tests" / "fixtures" / "short-form"
    vhost = proxy.vhost(host, platform, options)
    routes = proxy.routes(host, platform, inv, options)[platform.routes_path]
    kept = [line for line in vhost.splitlines() if not line.startswith(GLOBAL_NEW + VHOST_NEW)]
    old = (before / f"{platform.family}-{mode}-vhost.conf").read_text().splitlines()
    assert [line for line in kept if line] == [line for line in old if line]
    assert without_drain(routes).replace(" failonstatus=502,503 failontimeout=On", "") == \
        (before / f"{platform.family}-{mode}-routes.inc").read_text()
    assert ("failonstatus=502,503 failontimeout=On" in routes) == (mode == "balancer")
    assert "BalancerPersist" not in routes      # it would keep old member settings over a changed config


def test_long_form_with_tls_has_a_443_vhost_per_site_and_one_certificate_for_all(tmp_path):
    import datetime
    from cryptography import x509
    from provision import tls
    from provision.engine import Options
    data = long_form(tls="self-signed")
    inv = load(write(tmp_path, data))
    options = Options()
    options.tls = tls.prepare(inv, inv.group("proxies"), now=datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc))
    host = inv.hosts["proxy"]
    found = directives(proxy.vhost(host, REDHAT, options))
    assert [d for d in found if d[0] == "<VirtualHost"] == [["<VirtualHost", "*:80>"], ["<VirtualHost", "*:443>"]] * 2
    assert [d[1] for d in found if d[0] == "Include"] == ["/etc/httpd/provision/site-app.example.test.inc"] * 2 + \
        ["/etc/httpd/provision/site-api.example.test.inc"] * 2
    cert = x509.load_pem_x509_certificate(options.tls["proxy"].cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert {"app.example.test", "www.app.example.test", "api.example.test"} <= set(sans)


def test_short_form_raw_lines_come_before_proxypass_root(tmp_path):
    """The bug of old: raw lines after 'ProxyPass /' never took effect (the first match wins)."""
    data = yaml.safe_load((ROOT / "inventory" / "lab.yml").read_text())
    data["all"]["vars"] = {"proxy_extra_directives": ["ProxyPass /static !"]}
    inv = load(write(tmp_path, data))
    text = proxy.routes(inv.hosts["proxy"], DEBIAN, inv, OPTIONS)[DEBIAN.routes_path]
    passes = [d[1:] for d in directives(text) if d[0] == "ProxyPass"]
    assert passes.index(["/static", "!"]) < passes.index(["/", "balancer://mycluster/"])
