"""`provision deploy`: converge the backends, then the proxies, then one request through each proxy.

Bad input (inventory, -e, --limit, templates, TLS material) raises a UserError before any
connection; `syntax_check` lists every such problem without connecting.
"""
from __future__ import annotations

import time
import http.client
from urllib.parse import urlsplit

from . import audit, certificates, report, tls
from .engine import Options, Connections, StepResult, prefetch, run_role, take_sudo_password
from .errors import UserError
from .facts import Facts
from .interrupt import recap_on_interrupt
from .inventory import load
from .inventory.apps import is_code_app
from .platforms import PLATFORMS
from .render import TemplateError
from .rollout import rolling
from .roles import PHASES, backends, proxy



class DeployError(UserError):
    """Bad input found before any connection: one line naming the file and field."""


def plan_phases(inventory, limit: str | None, errors: list | None = None):
    """Which hosts each phase converges; checks the inventory is usable for the job.
    ``errors``: a list to collect each host's problem in, instead of raising the first."""
    chosen = {h.name for h in inventory.select(limit)} if limit else None
    for group, _ in PHASES:
        if group not in inventory.groups:
            raise DeployError(f"{inventory.path}: group {group!r} does not exist (the roles need "
                              f"'{PHASES[0][0]}' and '{PHASES[1][0]}')")
    if not any(b.apps for b in inventory.group("backends")):
        raise DeployError(f"{inventory.path}: group 'backends': no host has field 'apps'")
    proxies = inventory.group(proxy.GROUP)
    for host in proxies:
        try:
            proxy.client_url(host)
        except proxy.ProxyConfigError as exc:
            _refuse(errors, f"{inventory.path}: host {host.name!r}: {exc}")
    for b in inventory.group("backends"):
        elsewhere = [p.name for p in proxies if p.name != b.name]
        if b.apps and backends.on_loopback(b) and elsewhere:
            _refuse(errors, f"{inventory.path}: host {b.name!r}: field 'private_address': {b.private_address} is "
                            f"loopback, so proxy {elsewhere[0]!r} on another host cannot reach its apps")
    return [(role, [h for h in inventory.group(group) if chosen is None or h.name in chosen])
            for group, role in PHASES]


def _refuse(errors: list | None, message: str):
    if errors is None:
        raise DeployError(message)
    if message not in errors:
        errors.append(message)


def prevalidate(inventory, phases, options, errors: list | None = None):
    """Render everything once, so that a bad value fails here and never half-way on a host."""
    for role, hosts in phases:
        for host in hosts:
            for platform in PLATFORMS.values():
                try:
                    role.resources(host, platform, inventory, options)
                except backends.BackendConfigError as exc:
                    _refuse(errors, f"{inventory.path}: {exc}")
                    break
                except (TemplateError, proxy.ProxyConfigError) as exc:
                    _refuse(errors, f"host {host.name!r}: {exc}")
                    break


def prepare(inventory_path, options: Options, limit: str | None = None, extra_vars=()):
    """(inventory, phases), everything checked and rendered once; raises a UserError on bad input."""
    inventory = load(inventory_path, extra_vars)
    phases = plan_phases(inventory, limit)
    options.tls = tls.prepare(inventory, [h for role, hs in phases if role is proxy for h in hs],
                              save=not options.check)
    prevalidate(inventory, phases, options)
    return inventory, phases


def syntax_check(inventory_path, options: Options, limit: str | None = None, extra_vars=()) -> list[str]:
    """Every problem a deploy would refuse, one line each, without connecting: each host's
    variables and connection fields, the groups the roles need, the TLS material, every file
    rendered for every platform. [] when the deploy would go ahead."""
    errors: list[str] = []
    inventory = load(inventory_path, extra_vars, errors=errors)
    unusable = {n for n, h in inventory.hosts.items() if h.unusable}
    errors += [inventory.hosts[n].unusable for n in sorted(unusable)]
    inventory.hosts = {n: h for n, h in inventory.hosts.items() if n not in unusable}
    inventory.groups = {g: [n for n in members if n not in unusable] for g, members in inventory.groups.items()}
    refused = bool(errors)
    try:
        phases = plan_phases(inventory, limit, errors)
    except UserError as exc:
        # a group left empty by refused hosts says nothing new
        return errors if refused else errors + [str(exc)]
    options.tls, refused = {}, set()
    for host in [h for role, hs in phases if role is proxy for h in hs]:
        try:
            options.tls.update(tls.prepare(inventory, [host], save=False))
        except UserError as exc:
            _refuse(errors, str(exc))
            refused.add(host.name)
    phases = [(role, [h for h in hs if role is not proxy or h.name not in refused]) for role, hs in phases]
    prevalidate(inventory, phases, options, errors)
    return errors


def deploy(inventory_path: str | list, options: Options, limit: str | None = None, json_path: str | None = None,
           reporter: report.Reporter | None = None, smoke: bool = True, serial: int | None = None,
           extra_vars=()) -> int:
    """Backends first, then proxies; returns the exit code (report.exit_code). With ``serial``,
    backends roll out that many at a time, drained from the balancer while they change.
    Bad input raises a UserError (one line) before any connection."""
    reporter = reporter or report.Reporter()
    from_env = take_sudo_password()         # before an inventory script can run
    inventory, phases = prepare(inventory_path, options, limit, extra_vars)
    options.audit_run = "" if options.check else audit.run_id()
    for name, made in options.tls.items():
        if made.issued:
            reporter.info(f"{name} | tls | issued certificate serial {made.serial:x}")
    if options.sudo_password is None:
        options.sudo_password = from_env
    connections = Connections(options)
    # First Ctrl-C: the recap of what is known and the hosts mid-apply (their detached scripts
    # finish on the host), then exit 130.
    with recap_on_interrupt(reporter.interrupted):
        return _converge(inventory, phases, options, connections, reporter, json_path, smoke, serial)


def _converge(inventory, phases, options, connections, reporter, json_path, smoke, serial) -> int:
    started = time.monotonic()
    began = time.time()
    results = []
    roles_by_host: dict[str, list] = {}
    everyone = {}
    for role, hosts in phases:
        for h in hosts:
            roles_by_host.setdefault(h.name, []).append(role)
            everyone[h.name] = h
    try:
        facts = prefetch(roles_by_host, list(everyone.values()), inventory, options, connections, reporter)
        seen = {name: f for name, f in facts.items() if isinstance(f, Facts)}     # run_role drops changed ones
        for role, hosts in phases:
            if not hosts:
                continue
            if serial and role is backends and not options.check:
                results.append(rolling(role, hosts, inventory, options, connections, reporter, serial,
                                       inventory.group(proxy.GROUP), facts))
            else:
                results.append(run_role(role, hosts, inventory, options, connections, reporter, facts))
            if role is proxy:
                results.append(_acme(hosts, results[-1], seen, inventory, options, connections, reporter, began))
    finally:
        connections.close()
    merged = report.merge(results)
    smoke_results = {}
    if smoke and not options.check:
        messages = {a["message"] for b in inventory.group("backends") for a in b.apps if "message" in a}
        own_apps = any(is_code_app(a) for b in inventory.group("backends") for a in b.apps)
        reached = {name: c.address for name, c in connections.all().items()}
        checks = smoke_check([h for _, hs in phases[1:] for h in hs],
                             {r.host for r in merged if r.failed or r.unreachable}, messages, reporter,
                             inventory, addresses=reached, own_apps=own_apps)
        report.add_checks(merged, checks)
        smoke_results = {name: step.status == "ok" for name, step in checks.items()}
    reporter.recap(merged)
    elapsed = time.monotonic() - started
    reporter.info(f"took {elapsed:.2f} s")
    if json_path:
        counts = {name: {"connections": s.connections, "execs": s.execs, "uploads": s.uploads}
                  for name, s in connections.all().items()}
        report.write_json(json_path, report.to_json(merged, {"elapsed": elapsed, "ssh": counts,
                                                             "smoke": smoke_results, "check": options.check}))
    return report.exit_code(merged)


def _acme(proxies, converged: dict, seen: dict, inventory, options, connections, reporter, began: float) -> dict:
    """tls: acme after the proxies converged (provision.certificates), on those that did."""
    ready = [h for h in proxies if tls.mode(h) == "acme" and h.name in seen
             and not (converged[h.name].failed or converged[h.name].unreachable)]
    if options.check:
        return certificates.would_order(ready, seen, inventory, reporter)
    changed = {name for name, r in converged.items() if any(s.status == "changed" for s in r.steps)}
    return certificates.settle(ready, seen, inventory, options, connections, reporter, changed, began)


def smoke_url(host, address: str | None = None) -> str:
    """Where the smoke request goes: where clients reach the proxy (proxy.client_url), over
    https when its :80 only redirects there (tls_redirect) and no public_url says otherwise."""
    url = proxy.client_url(host, address)
    if "public_url" not in host.vars and tls.mode(host) != "off" and host.vars.get("tls_redirect"):
        url = "https" + url[len("http"):]
    return url


def smoke_connection(url: str, host, inventory):
    """A connection factory for the URL: https trusts the inventory's CA (or provided chain) when
    the proxy serves TLS itself, else the system's CAs (TLS ended by a load balancer in front)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        # lazy: only an https request needs ssl
        import ssl
        if tls.mode(host) != "off":
            trust = tls.trust_path(host, inventory)       # None: a public CA, in the system's store
            context = ssl.create_default_context(cafile=str(trust) if trust else None)
            context.check_hostname = False      # the certificate names the host; we may dial an address
        else:
            context = ssl.create_default_context()
        return lambda: http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=3, context=context)
    return lambda: http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=3)


def smoke_check(proxies, skip: set[str], messages: set[str], reporter, inventory,
                timeout: float = 10.0, addresses: dict | None = None, own_apps: bool = False) -> dict[str, StepResult]:
    """One request through each converged proxy, where its clients reach it, must return a
    backend's message (with apps of the user's own, which have none, any 2xx or 3xx answer).
    Polled, because Apache's graceful reload returns before the new generation serves (seen on
    every lab run). Returns a step per proxy, for its recap."""
    results = {}
    for host in proxies:
        if host.name in skip:
            continue
        url = smoke_url(host, (addresses or {}).get(host.name))
        connect = smoke_connection(url, host, inventory)
        label = f"smoke GET {url}"
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            try:
                conn = connect()
                try:
                    conn.request("GET", urlsplit(url).path or "/")
                    resp = conn.getresponse()
                    body = resp.read(300).decode(errors="replace")
                finally:
                    conn.close()
                if body in messages or (own_apps and 200 <= resp.status < 400):
                    results[host.name] = StepResult(label, "ok", f"{resp.status} {body!r}")
                    reporter.info(f"{host.name} | smoke | GET {url} -> {resp.status} {body!r}")
                    break
                last = f"{resp.status} {body[:60]!r}..., not a backend's message"
            except Exception as exc:   # any failure is retried until the deadline
                last = str(exc)
            if time.monotonic() > deadline:
                results[host.name] = StepResult(label, "failed", last)
                reporter.failed(host.name, "smoke", f"GET {url}: {last}")
                break
            time.sleep(0.05)
    return results
