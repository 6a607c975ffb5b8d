"""Sites, pools and routes: the proxy's model. Pure: inventory variables in, dataclasses out.

Short form (the tutorial's two modes): ``proxy_mode: balancer`` or ``single`` is one site named
``server_name`` with one route ``/`` to a pool ``mycluster`` of every backend app.
Long form, on a proxy host (usually in the ``proxies`` group's vars)::

    pools:
      web: {members: [web1, "web2:howdy"], sticky: true}
      api: {members: [{member: "web2:api", loadfactor: 2}], active_health: false}
    sites:
      - server_name: app.example.test
        aliases: [www.app.example.test]
        routes:
          - {path: /, pool: web}
          - {path: /static, folder: /var/www/static}   # served by the proxy
          - {path: /health-local, exclude: true}        # not proxied (another handler answers)
          - {path: /ws, websocket: web}                 # WebSocket connections to a pool

A member is a backend host (every app of it), a group of backends, or ``host:app``.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from .. import syntax
from ..errors import UserError

# An app's health path unless it names one: 2xx or 3xx there means it is up.
HEALTH_PATH = "/"

SHORT_POOL = "mycluster"
LBMETHODS = ("byrequests", "bytraffic", "bybusyness")
POOL_KEYS = {"members", "lbmethod", "sticky", "retry", "timeout", "connectiontimeout", "failonstatus",
             "failontimeout", "active_health"}
MEMBER_KEYS = {"member", "loadfactor", "standby"}
SITE_KEYS = {"server_name", "aliases", "routes"}
ROUTE_KINDS = ("pool", "folder", "exclude", "websocket")     # a route has exactly one of them
POOL_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,30}")
MEMBER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(?::[a-z][a-z0-9_-]*)?")
# What clients see of a member (its route in the ROUTEID cookie, the app's X-Backend header):
# "host", HOST-APP (the default), or "opaque", a name made from it that names no host.
MEMBER_NAMES = ("host", "opaque")
# Passive health: a member that answers one of these, or times out, leaves the rotation for
# `retry` seconds. Both are balancer parameters in httpd 2.4.6 (failonstatus since 2.2.17,
# failontimeout since 2.4.5: mod_proxy documentation, "Balancer parameters").
FAILONSTATUS = (502, 503)
# Active health (mod_proxy_hcheck, where the proxy's Apache has it): each member's app is asked for
# its health path every HC_INTERVAL seconds; HC_FAILS failed checks take it out, HC_PASSES passed
# ones bring it back (hcinterval, hcfails, hcpasses: mod_proxy_hcheck documentation).
HC_INTERVAL, HC_FAILS, HC_PASSES = 1, 2, 2
# With a check that brings back a member passive health took out (httpd 2.4.55+), `retry` is only a
# safety net: a member comes back when its check passes, never by a live request after `retry`.
HC_RETRY = 3600


class SitesError(UserError):
    """A one-line description of what is wrong in sites/pools and where."""


def member_name(host: str, app: str, names: str = "host") -> str:
    """What clients see of a member (MEMBER_NAMES). An opaque name hides the inventory's names from
    a casual look, not from someone who can guess them (it is a hash of HOST-APP)."""
    if names == "opaque":
        return "m" + hashlib.sha256(f"{host}-{app}".encode()).hexdigest()[:12]
    return f"{host}-{app}"


@dataclass(frozen=True)
class Member:
    """One backend app in a pool."""
    host: str
    app: str
    address: str
    port: int
    loadfactor: int | None = None
    standby: bool = False
    health: str = HEALTH_PATH   # the app's health path: 2xx or 3xx there means up
    names: str = "host"         # the backend host's member_names

    @property
    def route(self) -> str:
        return member_name(self.host, self.app, self.names)

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://{syntax.host_port(self.address, self.port)}"


@dataclass(frozen=True)
class Pool:
    """The members a route sends requests to, with the balancer's settings."""
    name: str
    members: tuple[Member, ...]
    lbmethod: str = "byrequests"
    sticky: bool = False
    retry: int = 5
    timeout: int = 30
    connectiontimeout: int = 2
    failonstatus: tuple[int, ...] = FAILONSTATUS
    failontimeout: bool = True
    active_health: bool = True  # mod_proxy_hcheck checks of each member's health path, where Apache has it
    balancer: bool = True       # False: the short form's single mode, one plain worker
    routes: bool = True         # members carry route= (the short form always did; long form: sticky)

    @property
    def url(self) -> str:
        return f"balancer://{self.name}" if self.balancer else self.members[0].url()


@dataclass(frozen=True)
class Route:
    """A path of a site and where it goes."""
    path: str
    kind: str                   # pool, folder (excluded, served from a folder), exclude, websocket (to a pool)
    pool: str | None = None
    folder: str | None = None

    @property
    def excluded(self) -> bool:
        return self.kind in ("folder", "exclude")

    @property
    def websocket(self) -> bool:
        return self.kind == "websocket"


@dataclass(frozen=True)
class Site:
    """A virtual host: its names and routes."""
    server_name: str
    aliases: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.server_name, *self.aliases)


@dataclass(frozen=True)
class Proxy:
    """Everything one proxy host serves."""
    short: bool
    sites: tuple[Site, ...]
    pools: tuple[Pool, ...] = field(default=())

    def pool(self, name: str) -> Pool:
        return next(p for p in self.pools if p.name == name)

    def pools_of(self, site: Site) -> tuple[Pool, ...]:
        """The pools a site's routes use, in the order the proxy lists them."""
        used = {r.pool for r in site.routes if r.pool}
        return tuple(p for p in self.pools if p.name in used)

    @property
    def sticky(self) -> bool:
        return any(p.sticky for p in self.pools)

    @property
    def websocket(self) -> bool:
        return any(r.websocket for s in self.sites for r in s.routes)

    @property
    def websocket_members(self) -> set[tuple[str, str]]:
        """(host, app) of every member of a pool that a WebSocket route points at."""
        pools = {r.pool for s in self.sites for r in s.routes if r.websocket}
        return {(m.host, m.app) for p in self.pools if p.name in pools for m in p.members}


def ordered(routes) -> tuple[Route, ...]:
    """Most specific first, whatever order they were written in: exclusions, then longer paths.
    Apache uses the first ProxyPass that matches (mod_proxy documentation, "Ordering ProxyPass")."""
    return tuple(sorted(routes, key=lambda r: (not r.excluded, -len(r.path.rstrip("/")), r.path)))


# -- validation of the merged variables (no other host needed) -------------------------------------

def _fail(where: str, field_: str, problem: str):
    raise SitesError(f"{where}: field '{field_}' {problem}")


def _int(where, field_, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        _fail(where, field_, f"must be a whole number {low}-{high}, got {value!r}")


def validate(v: dict, where: str) -> None:
    """Check a host's merged `pools` and `sites` (shape, names, values); members are resolved later
    against the whole inventory (check_references)."""
    pools, sites = v.get("pools"), v.get("sites")
    if pools is None and sites is None:
        return
    if not isinstance(pools, dict) or not pools:
        _fail(where, "pools", "must be a mapping of pool names, with sites")
    if not isinstance(sites, list) or not sites:
        _fail(where, "sites", "must be a list of sites, with pools")
    for name, body in pools.items():
        _validate_pool(where, name, body)
    seen_names: set[str] = set()
    for i, site in enumerate(sites):
        f = f"sites[{i}]"
        if not isinstance(site, dict):
            _fail(where, f, "must be a mapping with server_name, aliases, routes")
        unknown = set(site) - SITE_KEYS
        if unknown:
            _fail(where, f"{f}.{sorted(unknown)[0]}", "is unknown (sites take server_name, aliases, routes)")
        names = [site.get("server_name")] + list(site.get("aliases") or [])
        if not isinstance(site.get("aliases") or [], list):
            _fail(where, f"{f}.aliases", "must be a list of host names")
        for n in names:
            if isinstance(n, str) and n is names[0] and n.startswith("*"):
                _fail(where, f"{f}.server_name", f"cannot hold a wildcard (aliases can), got {n!r}")
            if not isinstance(n, str) or not syntax.dns_name(n, wildcard=n is not names[0]):
                _fail(where, f"{f}.server_name" if n is names[0] else f"{f}.aliases",
                      f"must be a host name, got {n!r}")
            if n.lower() in seen_names:
                _fail(where, f, f"name {n!r} is already used by another site")
            seen_names.add(n.lower())
        routes = site.get("routes")
        if not isinstance(routes, list) or not routes:
            _fail(where, f"{f}.routes", "must be a non-empty list of routes")
        paths: set[str] = set()
        for j, route in enumerate(routes):
            r = _route(where, f"{f}.routes[{j}]", route, pools)
            key = r.path.rstrip("/") or "/"
            if key in paths:
                _fail(where, f"{f}.routes[{j}].path", f"{r.path!r} is routed twice")
            paths.add(key)


def _validate_pool(where, name, body):
    f = f"pools.{name}"
    if not isinstance(name, str) or not POOL_NAME_RE.fullmatch(name):
        _fail(where, "pools", f"names must be lowercase letters, digits, - or _, got {name!r}")
    if not isinstance(body, dict):
        _fail(where, f, "must be a mapping with members")
    unknown = set(body) - POOL_KEYS
    if unknown:
        _fail(where, f"{f}.{sorted(unknown)[0]}", f"is unknown (pools take {', '.join(sorted(POOL_KEYS))})")
    members = body.get("members")
    if not isinstance(members, list) or not members:
        _fail(where, f"{f}.members", "must be a non-empty list of hosts, groups or host:app")
    for k, m in enumerate(members):
        mf = f"{f}.members[{k}]"
        if isinstance(m, dict):
            unknown = set(m) - MEMBER_KEYS
            if unknown:
                _fail(where, f"{mf}.{sorted(unknown)[0]}", "is unknown (members take member, loadfactor, standby)")
            if "loadfactor" in m:
                _int(where, f"{mf}.loadfactor", m["loadfactor"], 1, 100)
            if not isinstance(m.get("standby", False), bool):
                _fail(where, f"{mf}.standby", "must be true or false")
            m = m.get("member")
        if not isinstance(m, str) or not MEMBER_RE.fullmatch(m):
            _fail(where, mf, f"must be a host, a group or host:app, got {m!r}")
    lb = body.get("lbmethod", "byrequests")
    if lb not in LBMETHODS:
        _fail(where, f"{f}.lbmethod", f"must be one of {', '.join(LBMETHODS)}, got {lb!r}")
    for k in ("sticky", "failontimeout", "active_health"):
        if not isinstance(body.get(k, False), bool):
            _fail(where, f"{f}.{k}", "must be true or false")
    for k in ("retry", "timeout", "connectiontimeout"):
        if k in body:
            _int(where, f"{f}.{k}", body[k], 0 if k == "retry" else 1, 3600)
    codes = body.get("failonstatus", [])
    if not isinstance(codes, list):
        _fail(where, f"{f}.failonstatus", "must be a list of HTTP status codes (empty: off)")
    for c in codes:
        _int(where, f"{f}.failonstatus", c, 500, 599)


def _route(where, f, route, pools) -> Route:
    if not isinstance(route, dict):
        _fail(where, f, f"must be a mapping with path and one of {', '.join(ROUTE_KINDS)}")
    unknown = set(route) - {"path", *ROUTE_KINDS}
    if unknown:
        _fail(where, f"{f}.{sorted(unknown)[0]}", "is unknown (routes take path and one of "
              f"{', '.join(ROUTE_KINDS)})")
    path = route.get("path")
    if not isinstance(path, str) or not syntax.url_path(path):
        _fail(where, f"{f}.path", f"must be a URL path like /api, got {path!r}")
    kinds = [k for k in ROUTE_KINDS if k in route]
    if len(kinds) != 1:
        _fail(where, f, f"must have exactly one of {', '.join(ROUTE_KINDS)}")
    kind, value = kinds[0], route[kinds[0]]
    if kind in ("pool", "websocket"):
        if not isinstance(value, str) or value not in pools:
            _fail(where, f"{f}.{kind}", f"names no pool in 'pools': {value!r}")
        return Route(path, kind, pool=value)
    if path == "/":
        _fail(where, f"{f}.path", "/ cannot be excluded from proxying")
    if kind == "folder":
        if not isinstance(value, str) or not syntax.folder(value):
            _fail(where, f"{f}.folder", f"must be an absolute folder path on the proxy, got {value!r}")
        return Route(path, kind, folder=value)
    if value is not True:
        _fail(where, f"{f}.exclude", "must be true")
    return Route(path, kind)


def site_names(v: dict) -> list[str]:
    """Every server name and alias of the long form (for the TLS certificate)."""
    return [n for s in v.get("sites") or [] if isinstance(s, dict)
            for n in [s.get("server_name"), *(s.get("aliases") or [])] if isinstance(n, str)]


def served_names(v: dict, host_name: str) -> list[str]:
    """The names the proxy's vhosts answer to: every site's server name and aliases in the long
    form; in the short form, its one vhost's server_name (else the host's name)."""
    return site_names(v) if v.get("sites") else [v.get("server_name") or host_name]


# -- the model, with members resolved against the inventory -----------------------------------------

def _members(inventory, spec) -> list[tuple[str, dict]]:
    """(host name, app) pairs a member spec names, or [] when it names nothing (or no inventory)."""
    if inventory is None:
        return []
    name, _, app = spec.partition(":")
    backends = {h.name: h for h in inventory.group("backends")}
    if name in backends:
        hosts = [backends[name]]
    else:
        hosts = [h for h in inventory.group(name) if h.name in backends]
    return [(h.name, a) for h in hosts for a in h.apps if not app or a["name"] == app]


def check_references(inventory, host, where: str) -> None:
    """Every pool member must name backend apps, and no app twice in one pool."""
    for name, body in (host.vars.get("pools") or {}).items():
        seen = set()
        for k, m in enumerate(body["members"]):
            spec = m["member"] if isinstance(m, dict) else m
            found = _members(inventory, spec)
            if not found:
                _fail(where, f"pools.{name}.members[{k}]", f"{spec!r} names no app of a host in 'backends'")
            for h, a in found:
                if (h, a["name"]) in seen:
                    _fail(where, f"pools.{name}.members[{k}]", f"{h}:{a['name']} is already a member")
                seen.add((h, a["name"]))


def names_of(backend) -> str:
    """The backend host's member_names (the apps' X-Backend header reads the same)."""
    return getattr(backend, "vars", {}).get("member_names", MEMBER_NAMES[0])


def short_members(inventory) -> tuple[Member, ...]:
    """The short form's members: every app of every backend, in the inventory's order."""
    return tuple(Member(b.name, a["name"], b.private_address, a["port"], health=a.get("health", HEALTH_PATH),
                        names=names_of(b))
                 for b in (inventory.group("backends") if inventory else []) for a in b.apps)


def build(host, inventory, defaults: dict) -> Proxy:
    """The proxy's model. `defaults` are the role's settings (host vars over role defaults):
    proxy_mode, lbmethod, balancer_retry/timeout/connectiontimeout/failonstatus/failontimeout/active_health,
    server_name."""
    base = dict(lbmethod=defaults["lbmethod"], retry=defaults["balancer_retry"],
                timeout=defaults["balancer_timeout"], connectiontimeout=defaults["balancer_connectiontimeout"])
    passive = dict(failonstatus=tuple(defaults["balancer_failonstatus"]),
                   failontimeout=defaults["balancer_failontimeout"])
    active = defaults["balancer_active_health"]
    if not host.vars.get("sites"):
        pool = Pool(SHORT_POOL, short_members(inventory), balancer=defaults["proxy_mode"] == "balancer",
                    active_health=active, **base, **passive)
        site = Site(defaults["server_name"], routes=(Route("/", "pool", pool=SHORT_POOL),))
        return Proxy(True, (site,), (pool,))
    pools = []
    for name, body in host.vars["pools"].items():
        found = []
        for m in body["members"]:
            spec, opts = (m["member"], m) if isinstance(m, dict) else (m, {})
            for h, app in _members(inventory, spec):
                b = inventory.hosts[h]
                found.append(Member(h, app["name"], b.private_address, app["port"],
                                    opts.get("loadfactor"), opts.get("standby", False), app.get("health", HEALTH_PATH),
                                    names_of(b)))
        sticky = body.get("sticky", False)
        settings = {**base, **{k: body[k] for k in ("lbmethod", "retry", "timeout", "connectiontimeout")
                               if k in body}}
        pools.append(Pool(name, tuple(found), sticky=sticky, routes=sticky,
                          failonstatus=tuple(body.get("failonstatus", passive["failonstatus"])),
                          failontimeout=body.get("failontimeout", passive["failontimeout"]),
                          active_health=body.get("active_health", active), **settings))
    sites = []
    for s in host.vars["sites"]:
        routes = [_route("", "", r, host.vars["pools"]) for r in s["routes"]]
        sites.append(Site(s["server_name"], tuple(s.get("aliases") or ()), ordered(routes)))
    return Proxy(False, tuple(sites), tuple(pools))
