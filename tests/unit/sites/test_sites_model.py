"""provision.sites.model on its own: every refusal of the long form word for word, the route order,
and the model built from the variables (no inventory file, no rendering)."""
import copy
from types import SimpleNamespace

import pytest

from provision.sites import model
from provision.sites.model import Member, Pool, Route, Site, SitesError

GOOD = {
    "pools": {"web": {"members": ["web1:hello", {"member": "web2", "loadfactor": 2, "standby": True}],
                      "sticky": True, "retry": 0, "timeout": 3600, "connectiontimeout": 1,
                      "failonstatus": [500, 599], "failontimeout": False, "lbmethod": "bybusyness",
                      "active_health": False},
              "api": {"members": ["web2:api"]}},
    "sites": [{"server_name": "app.example.test", "aliases": ["*.app.example.test"],
               "routes": [{"path": "/", "pool": "web"}, {"path": "/api/", "pool": "api"},
                          {"path": "/static", "folder": "/var/www/static"}, {"path": "/x", "exclude": True}]},
              {"server_name": "API.example.test", "routes": [{"path": "/", "pool": "api"}]}],
}


def refusal(edit) -> str:
    v = copy.deepcopy(GOOD)
    edit(v)
    with pytest.raises(SitesError) as err:
        model.validate(v, "inv.yml: host 'proxy'")
    return str(err.value).removeprefix("inv.yml: host 'proxy': ")


def test_the_good_long_form_and_no_long_form_pass():
    model.validate(copy.deepcopy(GOOD), "w")
    v = copy.deepcopy(GOOD)
    v["pools"]["api"]["members"] = ["Web2:api", "9web"]
    v["sites"][0]["routes"].append({"path": "/apiX", "pool": "api"})     # not the same path as /api/
    model.validate(v, "w")
    model.validate({}, "w")
    model.validate({"pools": None, "sites": None, "other": 1}, "w")


def _set(path, value):
    def edit(v):
        *parents, last = path
        for p in parents:
            v = v[p]
        v[last] = value
    return edit


def _pop(*path):
    def edit(v):
        *parents, last = path
        for p in parents:
            v = v[p]
        del v[last]
    return edit


REFUSALS = [
    (_pop("pools"), "field 'pools' must be a mapping of pool names, with sites"),
    (_set(("pools",), {}), "field 'pools' must be a mapping of pool names, with sites"),
    (_set(("pools",), ["web"]), "field 'pools' must be a mapping of pool names, with sites"),
    (_pop("sites"), "field 'sites' must be a list of sites, with pools"),
    (_set(("sites",), []), "field 'sites' must be a list of sites, with pools"),
    (_set(("sites",), {"server_name": "a"}), "field 'sites' must be a list of sites, with pools"),
    # pools
    (_set(("pools", "Web"), {"members": ["web1"]}),
     "field 'pools' names must be lowercase letters, digits, - or _, got 'Web'"),
    (_set(("pools", 7), {"members": ["web1"]}), "field 'pools' names must be lowercase letters, digits, - or _, got 7"),
    (_set(("pools", "a" * 32), {"members": ["web1"]}),
     f"field 'pools' names must be lowercase letters, digits, - or _, got {'a' * 32!r}"),
    (_set(("pools", "web"), ["web1"]), "field 'pools.web' must be a mapping with members"),
    (_set(("pools", "web", "colour"), 1),
     "field 'pools.web.colour' is unknown (pools take active_health, connectiontimeout, failonstatus, failontimeout, "
     "lbmethod, members, retry, sticky, timeout)"),
    (_set(("pools", "web", "members"), []), "field 'pools.web.members' must be a non-empty list of hosts, groups or "
                                            "host:app"),
    (_set(("pools", "web", "members"), "web1"), "field 'pools.web.members' must be a non-empty list of hosts, groups "
                                                "or host:app"),
    (_set(("pools", "web", "members", 1, "weight"), 1),
     "field 'pools.web.members[1].weight' is unknown (members take member, loadfactor, standby)"),
    (_set(("pools", "web", "members", 1, "loadfactor"), 0),
     "field 'pools.web.members[1].loadfactor' must be a whole number 1-100, got 0"),
    (_set(("pools", "web", "members", 1, "loadfactor"), 101),
     "field 'pools.web.members[1].loadfactor' must be a whole number 1-100, got 101"),
    (_set(("pools", "web", "members", 1, "loadfactor"), True),
     "field 'pools.web.members[1].loadfactor' must be a whole number 1-100, got True"),
    (_set(("pools", "web", "members", 1, "loadfactor"), "2"),
     "field 'pools.web.members[1].loadfactor' must be a whole number 1-100, got '2'"),
    (_set(("pools", "web", "members", 1, "standby"), "yes"), "field 'pools.web.members[1].standby' must be true or "
                                                             "false"),
    (_set(("pools", "web", "members", 1, "member"), "web 2"),
     "field 'pools.web.members[1]' must be a host, a group or host:app, got 'web 2'"),
    (_pop("pools", "web", "members", 1, "member"),
     "field 'pools.web.members[1]' must be a host, a group or host:app, got None"),
    (_set(("pools", "web", "members", 0), "web1:Hello"),
     "field 'pools.web.members[0]' must be a host, a group or host:app, got 'web1:Hello'"),
    (_set(("pools", "web", "members", 0), "-web1"),
     "field 'pools.web.members[0]' must be a host, a group or host:app, got '-web1'"),
    (_set(("pools", "web", "members", 0), "web1:hello\n"),
     "field 'pools.web.members[0]' must be a host, a group or host:app, got 'web1:hello\\n'"),
    (_set(("pools", "web\n"), {"members": ["web1"]}),
     "field 'pools' names must be lowercase letters, digits, - or _, got 'web\\n'"),
    (_set(("sites", 1, "server_name"), "api.example.test\n"),
     "field 'sites[1].server_name' must be a host name, got 'api.example.test\\n'"),
    (_set(("sites", 0, "routes", 1, "path"), "/api\n"),
     "field 'sites[0].routes[1].path' must be a URL path like /api, got '/api\\n'"),
    (_set(("sites", 0, "routes", 2, "folder"), "/srv\n"),
     "field 'sites[0].routes[2].folder' must be an absolute folder path on the proxy, got '/srv\\n'"),
    (_set(("pools", "web", "members", 0), 3), "field 'pools.web.members[0]' must be a host, a group or host:app, got 3"),
    (_set(("pools", "web", "lbmethod"), "random"),
     "field 'pools.web.lbmethod' must be one of byrequests, bytraffic, bybusyness, got 'random'"),
    (_set(("pools", "web", "sticky"), "yes"), "field 'pools.web.sticky' must be true or false"),
    (_set(("pools", "web", "failontimeout"), 1), "field 'pools.web.failontimeout' must be true or false"),
    (_set(("pools", "web", "active_health"), "no"), "field 'pools.web.active_health' must be true or false"),
    (_set(("pools", "web", "retry"), -1), "field 'pools.web.retry' must be a whole number 0-3600, got -1"),
    (_set(("pools", "web", "retry"), 3601), "field 'pools.web.retry' must be a whole number 0-3600, got 3601"),
    (_set(("pools", "web", "timeout"), 0), "field 'pools.web.timeout' must be a whole number 1-3600, got 0"),
    (_set(("pools", "web", "timeout"), 3601), "field 'pools.web.timeout' must be a whole number 1-3600, got 3601"),
    (_set(("pools", "web", "connectiontimeout"), 0),
     "field 'pools.web.connectiontimeout' must be a whole number 1-3600, got 0"),
    (_set(("pools", "web", "failonstatus"), 502),
     "field 'pools.web.failonstatus' must be a list of HTTP status codes (empty: off)"),
    (_set(("pools", "web", "failonstatus"), [499]), "field 'pools.web.failonstatus' must be a whole number 500-599, "
                                                    "got 499"),
    (_set(("pools", "web", "failonstatus"), [600]), "field 'pools.web.failonstatus' must be a whole number 500-599, "
                                                    "got 600"),
    # sites
    (_set(("sites", 1), "api.example.test"), "field 'sites[1]' must be a mapping with server_name, aliases, routes"),
    (_set(("sites", 0, "tls"), "on"), "field 'sites[0].tls' is unknown (sites take server_name, aliases, routes)"),
    (_set(("sites", 0, "aliases"), "www.app.example.test"), "field 'sites[0].aliases' must be a list of host names"),
    (_set(("sites", 0, "server_name"), "a b"), "field 'sites[0].server_name' must be a host name, got 'a b'"),
    (_set(("sites", 0, "server_name"), "-a"), "field 'sites[0].server_name' must be a host name, got '-a'"),
    (_pop("sites", 0, "server_name"), "field 'sites[0].server_name' must be a host name, got None"),
    (_set(("sites", 0, "aliases"), ["ok.test", "a_b"]), "field 'sites[0].aliases' must be a host name, got 'a_b'"),
    (_set(("sites", 0, "aliases"), [5]), "field 'sites[0].aliases' must be a host name, got 5"),
    (_set(("sites", 0, "server_name"), "*.example.test"),
     "field 'sites[0].server_name' cannot hold a wildcard (aliases can), got '*.example.test'"),
    (_set(("sites", 1, "server_name"), "APP.example.test"),
     "field 'sites[1]' name 'APP.example.test' is already used by another site"),
    (_set(("sites", 1, "aliases"), ["*.App.example.test"]),
     "field 'sites[1]' name '*.App.example.test' is already used by another site"),
    (_set(("sites", 0, "aliases"), ["app.example.test"]),
     "field 'sites[0]' name 'app.example.test' is already used by another site"),
    (_pop("sites", 1, "routes"), "field 'sites[1].routes' must be a non-empty list of routes"),
    (_set(("sites", 1, "routes"), []), "field 'sites[1].routes' must be a non-empty list of routes"),
    (_set(("sites", 1, "routes"), {"path": "/"}), "field 'sites[1].routes' must be a non-empty list of routes"),
    # routes
    (_set(("sites", 0, "routes", 1), "/api"),
     "field 'sites[0].routes[1]' must be a mapping with path and one of pool, folder, exclude, websocket"),
    (_set(("sites", 0, "routes", 1, "to"), "x"),
     "field 'sites[0].routes[1].to' is unknown (routes take path and one of pool, folder, exclude, websocket)"),
    (_set(("sites", 0, "routes", 1, "path"), "api"), "field 'sites[0].routes[1].path' must be a URL path like /api, "
                                                     "got 'api'"),
    (_set(("sites", 0, "routes", 1, "path"), "/a b"), "field 'sites[0].routes[1].path' must be a URL path like /api, "
                                                      "got '/a b'"),
    (_pop("sites", 0, "routes", 1, "path"), "field 'sites[0].routes[1].path' must be a URL path like /api, got None"),
    (_pop("sites", 0, "routes", 1, "pool"), "field 'sites[0].routes[1]' must have exactly one of pool, folder, "
                                            "exclude, websocket"),
    (_set(("sites", 0, "routes", 1, "exclude"), True),
     "field 'sites[0].routes[1]' must have exactly one of pool, folder, exclude, websocket"),
    (_set(("sites", 0, "routes", 1, "pool"), "nope"), "field 'sites[0].routes[1].pool' names no pool in 'pools': "
                                                      "'nope'"),
    (_set(("sites", 1, "routes"), [{"path": "/", "exclude": True}]),
     "field 'sites[1].routes[0].path' / cannot be excluded from proxying"),
    (_set(("sites", 1, "routes"), [{"path": "/", "folder": "/srv"}]),
     "field 'sites[1].routes[0].path' / cannot be excluded from proxying"),
    (_set(("sites", 0, "routes", 2, "folder"), "static"),
     "field 'sites[0].routes[2].folder' must be an absolute folder path on the proxy, got 'static'"),
    (_set(("sites", 0, "routes", 2, "folder"), "/srv/"),
     "field 'sites[0].routes[2].folder' must be an absolute folder path on the proxy, got '/srv/'"),
    (_set(("sites", 0, "routes", 2, "folder"), 1),
     "field 'sites[0].routes[2].folder' must be an absolute folder path on the proxy, got 1"),
    (_set(("sites", 0, "routes", 3, "exclude"), "yes"), "field 'sites[0].routes[3].exclude' must be true"),
    (_set(("sites", 0, "routes", 3, "path"), "/api"), "field 'sites[0].routes[3].path' '/api' is routed twice"),
    (_set(("sites", 1, "routes"), [{"path": "/", "pool": "api"}, {"path": "/", "pool": "web"}]),
     "field 'sites[1].routes[1].path' '/' is routed twice"),
]


@pytest.mark.parametrize("edit, message", REFUSALS)
def test_each_refusal_word_for_word(edit, message):
    assert refusal(edit) == message


def test_members_and_pools_as_apache_names_them():
    m = Member("web1", "hello", "10.0.0.1", 8080)
    assert (m.route, m.url(), m.url("https"), m.loadfactor, m.standby) == (
        "web1-hello", "http://10.0.0.1:8080", "https://10.0.0.1:8080", None, False)
    assert Pool("web", (m,)).url == "balancer://web"
    assert Pool("web", (m,), balancer=False).url == "http://10.0.0.1:8080"
    p = Pool("web", (m,))
    assert (p.lbmethod, p.sticky, p.retry, p.timeout, p.connectiontimeout, p.failonstatus, p.failontimeout,
            p.active_health, p.balancer, p.routes) == ("byrequests", False, 5, 30, 2, (502, 503), True, True, True, True)
    assert m.health == "/"


def test_route_kinds_and_site_names():
    assert [Route("/a", k).excluded for k in ("pool", "folder", "exclude")] == [False, True, True]
    assert Site("a.test", ("b.test", "c.test")).names == ("a.test", "b.test", "c.test")
    assert Site("a.test").names == ("a.test",)
    assert model.site_names(GOOD) == ["app.example.test", "*.app.example.test", "API.example.test"]
    assert model.site_names({"sites": ["x", {"server_name": 3, "aliases": ["b.test", None]}]}) == ["b.test"]
    assert model.site_names({}) == [] and model.site_names({"sites": None}) == []


def test_routes_most_specific_first():
    routes = [Route("/", "pool", "web"), Route("/api/", "pool", "api"), Route("/ab", "pool", "api"),
              Route("/api/v1", "pool", "api"), Route("/static", "folder", folder="/s"), Route("/x", "exclude"),
              Route("/aa", "pool", "api")]
    assert [r.path for r in model.ordered(routes)] == ["/static", "/x", "/api/v1", "/api/", "/aa", "/ab", "/"]


def test_proxy_pools_of_a_site_in_the_proxy_order_and_stickiness():
    a, b, c = (Pool(n, ()) for n in ("a", "b", "c"))
    site = Site("s", routes=(Route("/", "pool", "c"), Route("/x", "exclude"), Route("/y", "pool", "a")))
    proxy = model.Proxy(False, (site,), (a, b, c))
    assert proxy.pools_of(site) == (a, c) and proxy.pool("b") is b
    assert not proxy.sticky
    assert model.Proxy(False, (), (a, Pool("d", (), sticky=True))).sticky


class Inv:
    """The two calls the model makes of an inventory: group() and hosts."""
    def __init__(self, backends, groups=None):
        self.hosts = {h.name: h for h in backends}
        self.groups = {"backends": backends, **(groups or {})}

    def group(self, name):
        return self.groups.get(name, [])


def backend(name, address, *apps):
    return SimpleNamespace(name=name, private_address=address, apps=[{"name": a, "port": p} for a, p in apps])


WEB1 = backend("web1", "10.0.0.1", ("hello", 8080))
WEB2 = backend("web2", "10.0.0.2", ("howdy", 8081), ("api", 8082))
WEB2.apps[1]["health"] = "/api/health"          # an app's health path (default /)
OTHER = backend("db1", "10.0.0.9", ("pg", 5432))
INV = Inv([WEB1, WEB2], {"blue": [WEB2, OTHER], "db": [OTHER]})
DEFAULTS = {"proxy_mode": "balancer", "lbmethod": "bytraffic", "balancer_retry": 7, "balancer_timeout": 31,
            "balancer_connectiontimeout": 3, "balancer_failonstatus": [503], "balancer_failontimeout": True,
            "balancer_active_health": True, "server_name": "front.test"}


def test_members_a_spec_names():
    assert model._members(None, "web1") == []
    assert model._members(INV, "web2:api") == [("web2", {"name": "api", "port": 8082, "health": "/api/health"})]
    assert [(h, a["name"]) for h, a in model._members(INV, "web2")] == [("web2", "howdy"), ("web2", "api")]
    assert [(h, a["name"]) for h, a in model._members(INV, "blue")] == [("web2", "howdy"), ("web2", "api")]
    assert [(h, a["name"]) for h, a in model._members(INV, "backends:hello")] == [("web1", "hello")]
    assert model._members(INV, "db") == [] and model._members(INV, "web1:api") == []


def _proxy_host(**v):
    return SimpleNamespace(name="proxy", vars=v)


def test_references_each_refusal_word_for_word():
    def refused(pools):
        with pytest.raises(SitesError) as err:
            model.check_references(INV, _proxy_host(pools=pools), "w")
        return str(err.value)
    model.check_references(INV, _proxy_host(pools={"p": {"members": ["web1", {"member": "web2:api"}]}}), "w")
    model.check_references(INV, _proxy_host(), "w")
    assert refused({"p": {"members": ["web1", "db"]}}) == "w: field 'pools.p.members[1]' 'db' names no app of a " \
                                                         "host in 'backends'"
    assert refused({"p": {"members": ["web1"]}, "q": {"members": [{"member": "web2"}, "blue"]}}) == \
        "w: field 'pools.q.members[1]' web2:howdy is already a member"


def test_short_form_model_from_the_role_settings():
    proxy = model.build(_proxy_host(), INV, DEFAULTS)
    pool = proxy.pools[0]
    assert proxy.short is True and proxy.pools == (pool,)
    assert proxy.sites == (Site("front.test", routes=(Route("/", "pool", pool="mycluster"),)),)
    assert pool == Pool("mycluster", (Member("web1", "hello", "10.0.0.1", 8080), Member("web2", "howdy", "10.0.0.2", 8081),
                                      Member("web2", "api", "10.0.0.2", 8082, health="/api/health")),
                        lbmethod="bytraffic", retry=7, timeout=31, connectiontimeout=3, failonstatus=(503,),
                        failontimeout=True, active_health=True, balancer=True, routes=True, sticky=False)
    assert not model.build(_proxy_host(), INV, {**DEFAULTS, "balancer_active_health": False}).pools[0].active_health
    single = model.build(_proxy_host(), INV, {**DEFAULTS, "proxy_mode": "single"}).pools[0]
    assert not single.balancer and single.url == "http://10.0.0.1:8080"
    assert model.build(_proxy_host(), None, DEFAULTS).pools[0].members == ()


def test_long_form_model_from_the_variables():
    v = copy.deepcopy(GOOD)
    proxy = model.build(_proxy_host(**v), INV, DEFAULTS)
    web, api = proxy.pools
    assert proxy.short is False
    assert web == Pool("web", (Member("web1", "hello", "10.0.0.1", 8080),
                               Member("web2", "howdy", "10.0.0.2", 8081, 2, True),
                               Member("web2", "api", "10.0.0.2", 8082, 2, True, "/api/health")),
                       lbmethod="bybusyness", sticky=True, retry=0, timeout=3600, connectiontimeout=1,
                       failonstatus=(500, 599), failontimeout=False, active_health=False, routes=True)
    assert api == Pool("api", (Member("web2", "api", "10.0.0.2", 8082, health="/api/health"),), lbmethod="bytraffic",
                       sticky=False, retry=7, timeout=31, connectiontimeout=3, failonstatus=(503,), failontimeout=True,
                       active_health=True, routes=False)
    first, second = proxy.sites
    assert first == Site("app.example.test", ("*.app.example.test",), (
        Route("/static", "folder", folder="/var/www/static"), Route("/x", "exclude"),
        Route("/api/", "pool", pool="api"), Route("/", "pool", pool="web")))
    assert second == Site("API.example.test", (), (Route("/", "pool", pool="api"),))
