"""`provision verify`: prove a deployed fleet is right with pytest-testinfra checks (tests/infra).

This module turns an inventory into what the checks need: one testinfra host spec per host,
an ssh_config with deploy's connection settings, and the expected state of every proxy and app.
Planning and the directive checks are pure; main() only runs pytest.
"""
from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

from .facts import parse_apache_modules  # noqa: F401  (the checks parse -M with it)
from .inventory import PROXY_MODES, Host, Inventory, load
from .inventory.apps import setting as app_setting
from .platforms import PROXY_MODULES
from .roles import backends, proxy
from .sites import model as sitemodel
from . import openssh, tls as tlslib
from .data import SUITE
from .errors import UserError

CLUSTER = "balancer://mycluster"
MODULE_IDS = tuple(mod_id for mod_id, _ in PROXY_MODULES.values())


@dataclass(frozen=True)
class ProxyCheck:
    """A proxy verify checks: where testinfra reaches it and where clients do."""
    name: str
    spec: str                   # testinfra host spec
    address: str                # the host name or address in `url`
    mode: str
    server_name: str
    members: tuple[sitemodel.Member, ...]
    messages: tuple[str | None, ...]    # what each member answers, in the same order (None: an app of your own)
    retry: int = proxy.DEFAULTS["balancer_retry"]   # seconds a failed member sits out
    tls: str = "off"
    trust: str | None = None    # the CA file (or provided chain) the served certificate must chain to
    redirect: bool = False      # tls_redirect: plain http answers 301 but for the health path
    health_path: str = proxy.DEFAULTS["health_path"]
    model: sitemodel.Proxy | None = None    # the sites, pools and routes it serves
    url: str = ""               # where clients reach it: public_url, else http://address/
    own_routes: frozenset = frozenset()     # members that are apps of your own (no X-Backend header)
    tls_names: tuple[str, ...] = ()     # what its certificate must name, each asked for by SNI
    sni: str | None = None      # the name https checks send (SNI and Host): tls: acme names no address
    min_days: int = tlslib.RENEW_BEFORE.days    # the fewest days its certificate may have left

    @property
    def base(self) -> str:
        return self.url or f"http://{self.address}/"

    @property
    def https_url(self) -> str:
        """The https end-to-end checks' URL: public_url when it is https, else :443 on the address."""
        return self.base if self.base.startswith("https:") else "https" + self.base[len("http"):]

    @property
    def requests(self) -> int:
        """Enough requests to go twice round the balancer."""
        return 2 * len(self.members)

    @property
    def demo(self) -> bool:
        """Its default site serves the demo's apps, which answer their message, /go and /whoami."""
        return None not in self.messages


@dataclass(frozen=True)
class AppCheck:
    """A backend app verify checks on its host."""
    name: str                   # host name
    spec: str
    member: sitemodel.Member
    message: str | None         # what the app answers (None: an app of your own, up when health answers)
    unit: str
    user: str
    health: str = "/"

    @property
    def id(self) -> str:
        return f"{self.name}-{self.member.app}"


@dataclass(frozen=True)
class Plan:
    """What verify checks, on which hosts."""
    proxies: tuple[ProxyCheck, ...]
    apps: tuple[AppCheck, ...]
    hosts: tuple[Host, ...]


# -- from the inventory ---------------------------------------------------------------------------

def ssh_lookup(host: Host) -> dict:
    """The inventory's ssh_config entry for this host ({} without one)."""
    if not host.ssh_config:
        return {}
    # lazy: paramiko costs ~100 ms of start-up, needed only once a host is reached
    import paramiko
    config = paramiko.SSHConfig.from_path(host.ssh_config)
    return config.lookup(host.name)


def login_user(host: Host, lookup: dict) -> str:
    return host.user or lookup.get("user") or getpass.getuser()


def reach_address(host: Host, lookup: dict) -> str:
    return host.address if host.explicit_address else lookup.get("hostname", host.address)


PLAIN_ALIAS = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def ssh_alias(host: Host) -> str:
    """The host's name in our ssh_config and in testinfra's ssh:// spec: its inventory name when
    that is plain, else a name made from it. ssh_config reads '*', '?', '!' and ',' in a Host
    line as patterns (a host named '*' would give every host its settings), and testinfra's spec
    reads '@', '?', ':' and '/'."""
    if PLAIN_ALIAS.fullmatch(host.name):
        return host.name
    return "provision-host-" + hashlib.sha256(host.name.encode()).hexdigest()[:16]


def host_spec(host: Host, user: str) -> str:
    """testinfra's ssh:// spec: the alias of our ssh_config, sudo for a non-root login."""
    return f"ssh://{ssh_alias(host)}" + ("" if user == "root" else "?sudo=true")


def proxy_mode(host: Host, mode: str | None) -> str:
    return mode or host.vars.get("proxy_mode") or proxy.DEFAULTS["proxy_mode"]


def plan(inventory: Inventory, limit: str | None = None, mode: str | None = None,
         lookup=ssh_lookup) -> Plan:
    """What to check on each chosen host. `lookup` reads ssh_config (injectable for tests)."""
    if mode is not None and mode not in PROXY_MODES:
        raise ValueError(f"--mode must be one of {', '.join(PROXY_MODES)}, got {mode!r}")
    chosen = inventory.select(limit)
    every = sitemodel.short_members(inventory)
    messages = {(b.name, a["name"]): a.get("message") for b in inventory.group(backends.GROUP) for a in b.apps}
    healths = {(b.name, a["name"]): app_setting(a, "health") for b in inventory.group(backends.GROUP) for a in b.apps}
    proxies, apps = [], []
    for h in chosen:
        found = lookup(h)
        spec = host_spec(h, login_user(h, found))
        if h.name in inventory.groups.get(proxy.GROUP, []):
            trust = tlslib.trust_path(h, inventory)
            try:
                url = proxy.client_url(h, reach_address(h, found))
            except proxy.ProxyConfigError as exc:
                raise ValueError(f"{inventory.path}: host {h.name!r}: {exc}") from None
            served = proxy.model(h, inventory, SimpleNamespace(mode=mode))
            site = served.sites[0]          # the default vhost: what the proxy's address answers
            root = next(r for r in site.routes if r.path == "/") if not served.short else None
            root_members = every if root is None or root.pool is None else tuple(
                m for m in every if (m.host, m.app) in {(x.host, x.app) for x in served.pool(root.pool).members})
            address = urlsplit(url).hostname
            acme = tlslib.mode(h) == "acme"
            proxies.append(ProxyCheck(h.name, spec, address, proxy_mode(h, mode),
                                      site.server_name, root_members,
                                      tuple(messages[m.host, m.app] for m in root_members),
                                      h.vars.get("balancer_retry", proxy.DEFAULTS["balancer_retry"]),
                                      tlslib.mode(h), str(trust) if trust else None,
                                      bool(h.vars.get("tls_redirect")),
                                      h.vars.get("health_path", proxy.DEFAULTS["health_path"]), served, url,
                                      frozenset(f"{m.host}-{m.app}" for m in every if messages[m.host, m.app] is None),
                                      tls_names=certificate_names(h, site.server_name, address),
                                      sni=site.server_name if acme else None,
                                      min_days=ACME_MIN_DAYS if acme else RENEW_BEFORE_DAYS))
        if h.name in inventory.groups.get(backends.GROUP, []):
            apps += [AppCheck(h.name, spec, m, messages[m.host, m.app], backends.unit_name({"name": m.app}),
                              backends.app_user({"name": m.app}), healths[m.host, m.app])
                     for m in every if m.host == h.name]
    return Plan(tuple(proxies), tuple(apps), tuple(chosen))


def ssh_config_text(hosts, control_dir: str) -> str:
    """An ssh_config giving OpenSSH deploy's settings: the inventory's address, user, port and key
    win, then the inventory's ssh_config (or ~/.ssh/config). Host keys are checked as deploy checks
    them, for every host and every ProxyJump hop: the `Host *` block comes before the included
    configs, and OpenSSH keeps the first value it reads. One master connection per host, reused
    by every check. Every value is quoted (provision.openssh), so none can add a line."""
    lines = ["# Written by provision verify from the inventory."]
    includes = []
    for h in hosts:
        where = f"host {h.name!r}"
        alias = ssh_alias(h)
        lines.append(f"Host {openssh.value('Host', alias, where)}")
        # A made-up alias matches nothing in the included configs: what they say for the
        # inventory name is written here (ssh_lookup reads it as ssh would).
        found = ssh_lookup(h) if alias != h.name else {}
        if h.explicit_address or alias != h.name:
            lines.append(openssh.line("HostName", h.address, where))
        if h.user or found.get("user"):
            lines.append(openssh.line("User", h.user or found["user"], where))
        if h.port or found.get("port"):
            lines.append(openssh.line("Port", h.port or found["port"], where))
        if h.key:
            lines += [openssh.line("IdentityFile", h.key, where), "    IdentitiesOnly yes"]
        lines += [openssh.line("IdentityFile", k, where) for k in found.get("identityfile", []) if not h.key]
        if h.proxy_jump or found.get("proxyjump"):
            lines.append(openssh.line("ProxyJump", h.proxy_jump or found["proxyjump"], where))
        known = h.known_hosts or found.get("userknownhostsfile")
        if known:
            lines.append("    UserKnownHostsFile " + " ".join(openssh.value("UserKnownHostsFile", f, where)
                                                             for f in known.split()))
        accept = "accept-new" if h.vars.get("accept_new_host_keys") or h.host_key_checking == "accept-new" else "yes"
        lines += [f"    StrictHostKeyChecking {accept}", "    BatchMode yes",
                  "    ControlMaster auto", openssh.line("ControlPath", f"{control_dir}/{alias}", where),
                  "    ControlPersist 60"]
        include = h.ssh_config or "~/.ssh/config"
        if include not in includes:
            includes.append(include)
    # Jump hosts that are not in the inventory: strict, whatever the included configs say.
    lines += ["Host *", "    StrictHostKeyChecking yes", "Match all"]
    lines += [openssh.line("Include", path, "ssh_config") for path in includes]
    return "\n".join(lines) + "\n"


class SshSettings:
    """A temporary ssh_config for the run; close() ends the master connections and removes it."""

    def __init__(self, hosts):
        self.hosts = list(hosts)
        self.dir = tempfile.mkdtemp(prefix="pv-")
        self.path = os.path.join(self.dir, "ssh_config")
        Path(self.path).write_text(ssh_config_text(self.hosts, self.dir))

    def close(self):
        for h in self.hosts:
            if os.path.exists(os.path.join(self.dir, ssh_alias(h))):
                subprocess.run(["ssh", "-F", self.path, "-O", "exit", ssh_alias(h)], capture_output=True,
                               timeout=10)
        for name in os.listdir(self.dir):
            try:
                os.unlink(os.path.join(self.dir, name))
            except OSError:
                pass
        os.rmdir(self.dir)


# -- expectations (pure) ----------------------------------------------------------------------------

def tcp_listeners(sockets: list[str], port: int) -> list[str]:
    """Addresses listening on a TCP port, from testinfra's get_listening_sockets() strings
    ("tcp://0.0.0.0:22", "tcp://:::80")."""
    found = []
    for sock in sockets:
        if sock.startswith("tcp://"):
            address, _, sport = sock[len("tcp://"):].rpartition(":")
            if sport == str(port):
                found.append(address)
    return found


def missing_modules(listed: set[str]) -> list[str]:
    return [m for m in MODULE_IDS if m not in listed]


def enabled_modules(platform, listing: str) -> set[str]:
    """Module ids the config enables, from the platform's modules_listing output: Debian's
    mods-enabled/*.load names, or RedHat's LoadModule lines. For when `-M` cannot run."""
    if platform.module_enable == "a2enmod":
        return {f"{line.strip()[:-5]}_module" for line in listing.splitlines() if line.strip().endswith(".load")}
    return set(re.findall(r"^\s*LoadModule\s+(\w+)", listing, re.M))


def directives(text: str) -> list[list[str]]:
    """Apache config lines as word lists, comments and blank lines dropped."""
    return [line.split() for line in (raw.strip() for raw in text.splitlines())
            if line and not line.startswith("#")]


def _has(found, *words) -> bool:
    """A directive starting with these words (the first case-insensitively; extra words allowed)."""
    n = len(words)
    return any(len(d) >= n and d[0].lower() == words[0].lower() and d[1:n] == list(words[1:]) for d in found)


def vhost_problems(vhost: str, routes: str, routes_path: str, check: ProxyCheck) -> list[str]:
    """What the deployed vhost and routes lack for the proxy's mode ([] when right)."""
    problems = []
    if not _has(directives(vhost), "Include", routes_path):
        problems.append(f"vhost lacks 'Include {routes_path}'")
    if not check.members:
        return problems + ["the inventory has no backend apps to proxy to"]
    found = directives(routes)
    if not any(d[0].lower() == "proxypreservehost" and len(d) == 2 and d[1].lower() == "on" for d in found):
        problems.append("routes lack 'ProxyPreserveHost On'")
    if check.mode == "balancer":
        if not _has(found, "<Proxy", f"{CLUSTER}>"):
            problems.append(f"routes lack '<Proxy {CLUSTER}>'")
        want = [m.url() for m in check.members]
        have = [d[1] for d in found if d[0].lower() == "balancermember" and len(d) > 1]
        for url in want:
            if url not in have:
                problems.append(f"routes lack 'BalancerMember {url}'")
        for url in have:
            if url not in want:
                problems.append(f"routes have unexpected 'BalancerMember {url}'")
        target = f"{CLUSTER}/"
    else:
        target = f"{check.members[0].url()}/"
    for directive in ("ProxyPass", "ProxyPassReverse"):
        if not _has(found, directive, "/", target):
            problems.append(f"routes lack '{directive} / {target}'")
    return problems


def site_problems(vhost: str, routes: dict[str, str | None], platform, check: ProxyCheck) -> list[str]:
    """What the deployed vhost and each site's routes file lack for the long form ([] when right).
    routes: routes path -> its text (None when the file is missing)."""
    problems = []
    found_vhost = directives(vhost)
    for site in check.model.sites:
        path = proxy.routes_path(platform, check.model, site)
        if not _has(found_vhost, "Include", path):
            problems.append(f"vhost lacks 'Include {path}'")
        if routes.get(path) is None:
            problems.append(f"{path} is missing")
            continue
        found = directives(routes[path])
        for r in site.routes:
            target = ["!"] if r.excluded else [f"balancer://{r.pool}{'.ws' if r.websocket else ''}{r.path}"]
            if not _has(found, "ProxyPass", r.path, *target):
                problems.append(f"{path} lacks 'ProxyPass {r.path} {target[0]}'")
    return problems


@dataclass(frozen=True)
class Probe:
    """One request that shows a route works: the members that may answer it (none: the proxy
    itself answers, no backend)."""
    site: str
    path: str
    members: tuple[str, ...]


def probes(model: sitemodel.Proxy) -> list[Probe]:
    """A request per route of every site: below the route's path, so that the route matches."""
    found = []
    for site in model.sites:
        for r in site.routes:
            if r.websocket:
                continue        # not plain HTTP; the lab tests echo through it with a WebSocket client
            path = r.path if r.path == "/" else r.path.rstrip("/") + "/provision-verify"
            members = () if r.excluded else tuple(m.route for m in model.pool(r.pool).members)
            found.append(Probe(site.server_name, path, members))
    return found


def probe_problem(probe: Probe, status: int, backend: str | None, own: frozenset = frozenset()) -> str | None:
    """None when the answer came from where the route says (X-Backend names the member). ``own``:
    the routes of apps of your own, which name no member: any answer of theirs below 500 will do."""
    if not status:
        return f"{probe.site}{probe.path}: no answer"
    if probe.members and backend is None and set(probe.members) <= own:
        return f"{probe.site}{probe.path}: answered {status}" if status >= 500 else None
    if probe.members:
        if backend not in probe.members:
            return f"{probe.site}{probe.path}: answered {status} by {backend or 'no backend'}, " \
                   f"expected one of {', '.join(probe.members)}"
    elif backend or status >= 500:
        return f"{probe.site}{probe.path}: answered {status} by {backend or 'the proxy'}, expected the proxy itself"
    return None


ACCESS_LINE = re.compile(r'^(?P<site>\S+) \S+ .*" (?P<status>\d{3}) .* worker=(?P<worker>\S*) us=(?P<us>\d+)$')


def access_line(text: str, marker: str) -> dict | None:
    """The last access log line (our format) whose request holds marker: site, status, worker, us."""
    for line in reversed(text.splitlines()):
        if marker in line:
            m = ACCESS_LINE.match(line)
            return m.groupdict() if m else {"unparsed": line}
    return None


def rotation_problem(answers: list[str], check: ProxyCheck) -> str | None:
    """None when the answers are what the mode promises: in balancer mode consecutive answers
    cycle through the apps in order (from any start), in single mode all come from the first app."""
    messages = list(check.messages)
    if None in messages:
        # apps of your own: any answer of theirs (2xx/3xx) will do, in any order
        bad = [a for a in answers if a.startswith("HTTP ") and not a.startswith(("HTTP 2", "HTTP 3"))
               or a.startswith("no answer from") or not a]
        return f"answers {bad} are not 2xx/3xx" if bad else None
    if check.mode == "single":
        want = [messages[0]] * len(answers)
        return None if answers == want else f"answers {answers}, expected all {messages[0]!r}"
    k = len(messages)
    for start in range(k):
        if answers == [messages[(start + i) % k] for i in range(len(answers))]:
            return None
    return f"answers {answers} do not cycle through {messages}"


RENEW_BEFORE_DAYS = tlslib.RENEW_BEFORE.days
# tls: acme: a certificate a CA renews (mod_md, or the control route's deploys) must have more than
# this left: renewal starts 30 days ahead (acme_renew_window), so 14 means renewal has failed a while.
ACME_MIN_DAYS = 14


def certificate_names(h: Host, server_name: str, address: str) -> tuple[str, ...]:
    """What a proxy's certificate must name: with tls: acme every DNS name it serves (no address:
    HTTP-01 validates names), else its server name and the address clients use."""
    if tlslib.mode(h) == "acme":
        return tlslib.acme_names(h)
    return tuple(dict.fromkeys((server_name.lower(), address.lower())))


def certificate_problems(peer: dict, check: ProxyCheck, now: float) -> list[str]:
    """What is wrong with a verified peer certificate (ssl.getpeercert() dict): too close to
    expiry, or one of the names it must cover missing ([] when right)."""
    # lazy: only an https request needs ssl
    import ssl
    problems = []
    left = (ssl.cert_time_to_seconds(peer["notAfter"]) - now) / 86400
    if left < check.min_days:
        problems.append(f"certificate expires in {left:.0f} days (< {check.min_days})")
    sans = {value.lower() for _, value in peer.get("subjectAltName", ())}
    for name in check.tls_names or (check.server_name.lower(), check.address.lower()):
        if name.lower() not in sans:
            problems.append(f"certificate names {sorted(sans)} lack {name!r}")
    return problems


def redirect_problem(status: int, location: str, proxy_address: str) -> str | None:
    if not 300 <= status < 400:
        return f"/go answered {status}, not a redirect"
    where = urlsplit(location).hostname
    if where != proxy_address:
        return f"/go redirects to {location!r}, not to the proxy's address {proxy_address}"
    return None


# -- running -------------------------------------------------------------------------------------

def pytest_args(inventory, limit: str | None = None, mode: str | None = None,
                junit: str | None = None, extra=(), extra_vars=(), unreachable: str | None = None) -> list[str]:
    """`inventory`: one source, or several merged in order (as deploy's repeated -i). The suite
    runs with its own settings only (its pytest.ini, rootdir and conftest), never the ones of
    the folder it runs from."""
    sources = [inventory] if isinstance(inventory, (str, Path)) else list(inventory)
    args = [str(SUITE)]
    for source in sources:
        args += ["--inventory", str(source)]
    args += ["-c", str(SUITE / "pytest.ini"), "--rootdir", str(SUITE), "--confcutdir", str(SUITE),
             "-p", "no:cacheprovider", "--tb=short"]
    for value in extra_vars:
        args += ["--extra-vars", value]
    if limit:
        args += ["--limit", limit]
    if mode:
        args += ["--mode", mode]
    if unreachable:
        args += ["--unreachable", unreachable]
    if junit:
        args += ["--junitxml", junit]
    return args + list(extra)


# Environment variables through which a user's pytest setup would reach the suite.
FOREIGN_PYTEST_ENV = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")


def reachable(hosts, options) -> dict[str, str]:
    """Each host that cannot be logged in to -> why, in plain words: deploy's transport, its host
    key checks and its connect bound, all hosts at once."""
    # lazy: the transport (paramiko) is needed only once hosts are checked
    from .engine import Connections
    from .transport import Unreachable
    connections = Connections(options)

    def one(host):
        try:
            connections.get(host).open()
            return None
        except Unreachable as exc:
            return str(exc)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(options.forks, len(hosts) or 1))) as pool:
            found = dict(zip([h.name for h in hosts], pool.map(one, hosts)))
    finally:
        connections.close()
    return {name: why for name, why in found.items() if why}


class Outcomes:
    """A pytest plugin that keeps each check's outcome under the host it checked."""

    def __init__(self):
        self.hosts: dict[str, list[dict]] = {}

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            host = getattr(report, "provision_host", None) or "-"
            reason = ""
            if report.skipped and isinstance(report.longrepr, tuple):
                reason = report.longrepr[2]
            elif report.failed:
                reason = str(report.longrepr).strip().splitlines()[-1] if report.longrepr else ""
            self.hosts.setdefault(host, []).append({"check": report.nodeid.split("::")[-1],
                                                    "outcome": report.outcome, "reason": reason})

    def statuses(self, unreachable: dict[str, str]) -> dict:
        out = {name: {"status": "unreachable", "error": why, "checks": self.hosts.get(name, [])}
               for name, why in unreachable.items()}
        for name, checks in self.hosts.items():
            if name not in out:
                failed = any(c["outcome"] == "failed" for c in checks)
                out[name] = {"status": "failed" if failed else "ok", "checks": checks}
        return out


# pytest's exit status -> ours: 1 some check failed, 2 interrupted, 3 pytest failed, 4 bad input
PYTEST_EXIT = {1: 2, 2: 130, 3: 2, 4: 1}


def main(inventory="inventory/lab.yml", limit: str | None = None, mode: str | None = None,
         junit: str | None = None, extra=(), extra_vars=(), json_path: str | None = None,
         accept_new_host_keys: bool = False, forks: int = 20, stream=None) -> int:
    """Check that every chosen host can be logged in to (one line for each that cannot: its checks
    are skipped), then run the checks. 0 all passed; 2 a check failed; 4 a host was unreachable
    and no check failed; 1 bad input; 130 interrupted."""
    # lazy: pytest costs ~75 ms of start-up, needed only when the checks run
    import pytest
    from .engine import Options
    from .report import document, exit_for, write_json
    stream = stream or sys.stdout
    started = time.monotonic()
    sources = [inventory] if isinstance(inventory, (str, Path)) else list(inventory)
    try:
        chosen = plan(load(sources, extra_vars), limit, mode).hosts
    except ValueError as exc:       # plan's own refusals (a proxy without an address to check)
        raise UserError(str(exc)) from None
    unreachable = reachable(chosen, Options(forks=forks, accept_new_host_keys=accept_new_host_keys))
    for name, why in unreachable.items():
        print(f"{name} | unreachable | {why} (its checks are skipped)", file=stream)
    stream.flush()
    outcomes = Outcomes()
    if chosen and len(unreachable) == len(chosen):
        print(f"verify: no host could be logged in to; no check ran (took {time.monotonic() - started:.1f} s)",
              file=stream)
        if json_path:
            write_json(json_path, document("verify", outcomes.statuses(unreachable), exit_for(False, True)))
        return exit_for(False, True)
    with tempfile.TemporaryDirectory(prefix="pv-") as tmp:
        skip = os.path.join(tmp, "unreachable.json")
        Path(skip).write_text(json.dumps(unreachable))
        saved = {k: os.environ.pop(k) for k in FOREIGN_PYTEST_ENV if k in os.environ}
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"     # none of the user's installed plugins
        try:
            status = int(pytest.main(pytest_args(sources, limit, mode, junit, extra, extra_vars, skip),
                                     plugins=[outcomes]))
        finally:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
            os.environ.update(saved)
    code = PYTEST_EXIT.get(status, exit_for(False, bool(unreachable)) if status in (0, 5) else 2)
    if code == 0 and unreachable:
        code = exit_for(False, True)
    print(f"verify took {time.monotonic() - started:.1f} s", file=stream)
    if json_path:
        write_json(json_path, document("verify", outcomes.statuses(unreachable), code))
    return code
