"""`invoke deploy`: converge the backends, then the proxies, then one request through each proxy."""
from __future__ import annotations

import os
import signal
import threading
import time
import http.client
from pathlib import Path
from urllib.parse import urlsplit

from . import audit, report, tls
from .engine import Options, Connections, StepResult, prefetch, run_role, take_sudo_password
from .inventory import InventoryError, load
from .platforms import PLATFORMS
from .render import TemplateError
from .rollout import rolling
from .roles import PHASES, backends, proxy

from .errors import UserError



class DeployError(UserError):
    """Bad input found before any connection: one line naming the file and field."""


def plan_phases(inventory, limit: str | None):
    """Which hosts each phase converges; checks the inventory is usable for the job."""
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
            raise DeployError(f"{inventory.path}: host {host.name!r}: {exc}") from None
    for b in inventory.group("backends"):
        elsewhere = [p.name for p in proxies if p.name != b.name]
        if b.apps and backends.on_loopback(b) and elsewhere:
            raise DeployError(f"{inventory.path}: host {b.name!r}: field 'private_address': {b.private_address} is "
                              f"loopback, so proxy {elsewhere[0]!r} on another host cannot reach its apps")
    return [(role, [h for h in inventory.group(group) if chosen is None or h.name in chosen])
            for group, role in PHASES]


def prevalidate(inventory, phases, options):
    """Render everything once, so that a bad value fails here and never half-way on a host."""
    for role, hosts in phases:
        for host in hosts:
            for platform in PLATFORMS.values():
                try:
                    role.resources(host, platform, inventory, options)
                except backends.BackendConfigError as exc:
                    raise DeployError(f"{inventory.path}: {exc}") from None
                except (TemplateError, proxy.ProxyConfigError) as exc:
                    raise DeployError(f"host {host.name!r}: {exc}") from None


def deploy(inventory_path: str | list, options: Options, limit: str | None = None, json_path: str | None = None,
           reporter: report.Reporter | None = None, smoke: bool = True, serial: int | None = None) -> int:
    """Backends first, then proxies. With ``serial``, backends roll out that many at a time,
    drained from the balancer while they change."""
    reporter = reporter or report.Reporter()
    from_env = take_sudo_password()         # before an inventory script can run
    try:
        inventory = load(inventory_path)
        phases = plan_phases(inventory, limit)
        options.tls = tls.prepare(inventory, [h for role, hs in phases if role is proxy for h in hs],
                                  save=not options.check)
        prevalidate(inventory, phases, options)
        options.audit_run = "" if options.check else audit.run_id()
    except (InventoryError, DeployError, tls.TLSError) as exc:
        reporter.info(f"error: {exc}")
        return 2
    for name, made in options.tls.items():
        if made.issued:
            reporter.info(f"{name} | tls | issued certificate serial {made.serial:x}")
    if options.sudo_password is None:
        options.sudo_password = from_env
    connections = Connections(options)
    previous = on_interrupt(reporter)
    try:
        return _converge(inventory, phases, options, connections, reporter, json_path, smoke, serial)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


INTERRUPTED = 130


def on_interrupt(reporter):
    """First Ctrl-C: print the recap of what is known and the hosts mid-apply (their detached
    scripts finish on the host), exit 130. A second Ctrl-C while that prints exits at once.
    Returns the previous handler (None off the main thread, where signals cannot be handled)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def at_once(signum, frame):
        os._exit(INTERRUPTED)

    def first(signum, frame):
        signal.signal(signal.SIGINT, at_once)
        reporter.interrupted()
        os._exit(INTERRUPTED)       # worker threads sit in SSH waits: no clean unwinding to wait for
    return signal.signal(signal.SIGINT, first)


def _converge(inventory, phases, options, connections, reporter, json_path, smoke, serial) -> int:
    started = time.monotonic()
    results = []
    roles_by_host: dict[str, list] = {}
    everyone = {}
    for role, hosts in phases:
        for h in hosts:
            roles_by_host.setdefault(h.name, []).append(role)
            everyone[h.name] = h
    try:
        facts = prefetch(roles_by_host, list(everyone.values()), inventory, options, connections, reporter)
        for role, hosts in phases:
            if not hosts:
                continue
            if serial and role is backends and not options.check:
                results.append(rolling(role, hosts, inventory, options, connections, reporter, serial,
                                       inventory.group(proxy.GROUP), facts))
            else:
                results.append(run_role(role, hosts, inventory, options, connections, reporter, facts))
    finally:
        connections.close()
    merged = report.merge(results)
    smoke_results = {}
    if smoke and not options.check:
        messages = {a["message"] for b in inventory.group("backends") for a in b.apps}
        reached = {name: c.address for name, c in connections.all().items()}
        checks = smoke_check([h for _, hs in phases[1:] for h in hs],
                             {r.host for r in merged if r.failed or r.unreachable}, messages, reporter,
                             inventory, addresses=reached)
        report.add_checks(merged, checks)
        smoke_results = {name: step.status == "ok" for name, step in checks.items()}
    reporter.recap(merged)
    elapsed = time.monotonic() - started
    reporter.info(f"took {elapsed:.2f} s")
    if json_path:
        counts = {name: {"connections": s.connections, "execs": s.execs} for name, s in connections.all().items()}
        Path(json_path).write_text(report.to_json(merged, {"elapsed": elapsed, "ssh": counts,
                                                          "smoke": smoke_results}))
    return report.exit_code(merged)


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
            context = ssl.create_default_context(cafile=str(tls.trust_path(host, inventory)))
            context.check_hostname = False      # the certificate names the host; we may dial an address
        else:
            context = ssl.create_default_context()
        return lambda: http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=3, context=context)
    return lambda: http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=3)


def smoke_check(proxies, skip: set[str], messages: set[str], reporter, inventory,
                timeout: float = 10.0, addresses: dict | None = None) -> dict[str, StepResult]:
    """One request through each converged proxy, where its clients reach it, must return a
    backend's message. Polled, because Apache's graceful reload returns before the new
    generation serves (seen on every lab run). Returns a step per proxy, for its recap."""
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
                if body in messages:
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
