"""`provision deploy`: converge the backends, then the proxies, then one request through each proxy.

Bad input (inventory, -e, --limit, templates, TLS material) raises a UserError before any
connection; `syntax_check` lists every such problem without connecting.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from . import audit, report, shards, tls
from .balancer.members import answer_script
from .engine import (Board, Connections, Gate, HostResult, Options, StepResult, converge, prefetch, run_role,
                     take_sudo_password)
from .errors import UserError
from .facts import Facts
from .interrupt import recap_on_interrupt
from .inventory import load
from .inventory.apps import is_code_app, setting
from .platforms import PLATFORMS
from .render import TemplateError
from .transport import preload
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


def prepare(inventory_path, options: Options, limit: str | None = None, extra_vars=(),
            shard: tuple[int, int] | None = None):
    """(inventory, phases, order), everything checked and rendered once; raises a UserError on bad
    input. ``order``: every selected host (before ``shard``) in recap order."""
    inventory = load(inventory_path, extra_vars)
    selected = plan_phases(inventory, limit)
    order = list(dict.fromkeys(h.name for _, hosts in selected for h in hosts))
    mine = set(shards.pick(order, shard))
    phases = [(role, [h for h in hosts if h.name in mine]) for role, hosts in selected]
    options.tls = tls.prepare(inventory, [h for role, hs in phases if role is proxy for h in hs],
                              save=not options.check)
    prevalidate(inventory, phases, options)
    return inventory, phases, order


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
           extra_vars=(), shard: tuple[int, int] | None = None) -> int:
    """Backends converge while proxies prepare; each proxy switches once the backends it routes to
    answer; returns the exit code (report.exit_code). With ``serial``, backends roll out that many
    at a time, drained from the balancer while they change, then the proxies converge. With
    ``shard`` = (K, N), only shard K of N of the selected hosts (shards.py). Bad input raises a
    UserError (one line) before any connection."""
    reporter = reporter or report.Reporter()
    from_env = take_sudo_password()         # before an inventory script can run
    inventory, phases, order = prepare(inventory_path, options, limit, extra_vars, shard)
    options.audit_run = "" if options.check else audit.run_id()
    for name, made in options.tls.items():
        if made.issued:
            reporter.info(f"{name} | tls | issued certificate serial {made.serial:x}")
    if options.sudo_password is None:
        options.sudo_password = from_env
    if shard is not None:
        chosen = sum(len(hosts) for _, hosts in phases)
        reporter.info(f"shard {shard[0]}/{shard[1]}: {chosen} of the {len(order)} hosts selected")
    connections = Connections(options)
    extra = {"order": order, **({"shard": f"{shard[0]}/{shard[1]}"} if shard else {})}
    # First Ctrl-C: the recap of what is known and the hosts mid-apply (their detached scripts
    # finish on the host), then exit 130.
    with recap_on_interrupt(reporter.interrupted):
        return _converge(inventory, phases, options, connections, reporter, json_path, smoke, serial, extra)


@dataclass
class Converged:
    """What converging hosts gave: per phase, host name -> HostResult (in the phase's host order),
    and per host its SSH counts and the address it was reached on."""
    phases: list[dict]
    ssh: dict[str, dict]
    reached: dict[str, str]


def _converge(inventory, phases, options, connections, reporter, json_path, smoke, serial, extra=None) -> int:
    started = time.monotonic()
    names = list(dict.fromkeys(h.name for _, hosts in phases for h in hosts))
    processes = worker_count(options, len(names), serial)
    try:
        if processes > 1:
            done = _in_workers(inventory, phases, options, reporter, names, processes)
        else:
            done = converge_phases(inventory, phases, options, connections, reporter, serial)
    finally:
        connections.close()
    merged = report.merge(done.phases)
    smoke_results = {}
    if smoke and not options.check:
        messages = {a["message"] for b in inventory.group("backends") for a in b.apps if "message" in a}
        own_apps = any(is_code_app(a) for b in inventory.group("backends") for a in b.apps)
        held = {r.host for r in merged if r.failed or r.unreachable or r.counts()["skipped"]}
        checks = smoke_check([h for _, hs in phases[1:] for h in hs], held, messages, reporter,
                             inventory, addresses=done.reached, own_apps=own_apps)
        report.add_checks(merged, checks)
        smoke_results = {name: step.status == "ok" for name, step in checks.items()}
    reporter.recap(merged)
    elapsed = time.monotonic() - started
    reporter.info(f"took {elapsed:.2f} s")
    if json_path:
        report.write_json(json_path, report.to_json(merged, {"elapsed": elapsed, "ssh": done.ssh,
                                                             "smoke": smoke_results, "check": options.check,
                                                             **(extra or {})}))
    return report.exit_code(merged)


MIN_HOSTS_PER_WORKER = 8        # below this, a process costs more than the core it adds


def worker_count(options, hosts: int, serial) -> int:
    return workers_wanted(options.workers, hosts, options.forks, os.cpu_count(), bool(serial))


def workers_wanted(requested: int, hosts: int, forks: int, cores: int | None, serial: bool = False) -> int:
    """How many processes converge ``hosts``: ``requested`` (0: one per core, when there are at
    least MIN_HOSTS_PER_WORKER hosts per process); never more than the hosts or the forks, and one
    for a rolling update (--serial), whose batches drain backends on every proxy in turn."""
    if serial or hosts <= 1:
        return 1
    wanted = requested if requested > 0 else min(cores or 1, hosts // MIN_HOSTS_PER_WORKER)
    return max(1, min(wanted, hosts, forks))


def _in_workers(inventory, phases, options, reporter, names: list[str], processes: int) -> Converged:
    """converge_phases spread over worker processes (workers.py), their results merged as one."""
    # lazy: multiprocessing only for a run spread over processes
    from . import workers
    preload()       # the SSH stack, imported once here: the forked workers share it

    def run(owned, forks, board, forward):
        mine = replace(options, forks=forks, trace=forward.sent if options.trace else None)
        conns = Connections(mine)
        try:
            return converge_phases(inventory, phases, mine, conns, forward, owned=owned, board=board)
        finally:
            conns.close()
    outcomes = workers.spread(names, processes, options.forks, run, reporter)
    # the phases' hosts, then the proxies again for tls: acme's step after them
    orders = [hosts for _, hosts in phases] + [phases[-1][1]]
    merged = Converged([{} for _ in orders], {}, {})
    for share, outcome in zip(workers.shares(names, processes), outcomes):
        if isinstance(outcome, str):        # the worker died: its hosts failed, saying why
            for p, (_, hosts) in enumerate(phases):
                merged.phases[p].update({h.name: HostResult(h.name, error=outcome) for h in hosts
                                         if h.name in share})
            continue
        for p, found in enumerate(outcome.phases):
            merged.phases[p].update(found)
        merged.ssh.update(outcome.ssh)
        merged.reached.update(outcome.reached)
    merged.phases = [{h.name: found[h.name] for h in hosts if h.name in found}
                     for found, hosts in zip(merged.phases, orders)]
    return merged


def converge_phases(inventory, phases, options, connections, reporter, serial=None, owned=None,
                    board: Board | None = None) -> Converged:
    """Converge the hosts of ``phases`` (only those named in ``owned``, when given: a worker
    process's share), facts first (one exec per host, all at once). Backends converge with their
    whole role while each proxy prepares; a proxy switches once the backends it routes to have
    converged (on ``board``, which worker processes share) and answer it. With ``serial``,
    backends roll out in batches first, then the proxies converge."""
    (backend_role, backends_), (proxy_role, proxies) = phases
    mine = (lambda h: True) if owned is None else (lambda h: h.name in owned)
    backends_, proxies = [h for h in backends_ if mine(h)], [h for h in proxies if mine(h)]
    roles_by_host: dict[str, list] = {}
    everyone = {}
    for role, hosts in ((backend_role, backends_), (proxy_role, proxies)):
        for h in hosts:
            roles_by_host.setdefault(h.name, []).append(role)
            everyone[h.name] = h
    began = time.time()
    facts = prefetch(roles_by_host, list(everyone.values()), inventory, options, connections, reporter)
    seen = {name: f for name, f in facts.items() if isinstance(f, Facts)}     # converging drops changed ones
    if serial and not options.check:
        # lazy: only --serial rolls out through balancer-manager
        from .rollout import rolling
        first = rolling(backend_role, backends_, inventory, options, connections, reporter, serial,
                        inventory.group(proxy.GROUP), facts) if backends_ else {}
        results = [first, run_role(proxy_role, proxies, inventory, options, connections, reporter, facts)]
    else:
        results = _pipeline(inventory, phases, backends_, proxies, options, connections, reporter, facts,
                            board or Board())
    results.append(_acme(proxies, results[1], seen, inventory, options, connections, reporter, began))
    counts = {name: {"connections": c.connections, "execs": c.execs, "uploads": c.uploads}
              for name, c in connections.all().items()}
    return Converged(results, counts, {name: c.address for name, c in connections.all().items()})


def _pipeline(inventory, phases, backends_, proxies, options, connections, reporter, facts, board) -> list[dict]:
    (backend_role, every_backend), (proxy_role, _) = phases
    in_run = {h.name for h in every_backend}
    slots = threading.BoundedSemaphore(max(1, options.forks))

    def backend_task(host):
        result = None
        try:
            result = converge(backend_role, host, inventory, options, connections, reporter, facts,
                              planned=lambda changing: board.planned(host.name, changing), slots=slots)
            return result
        finally:
            board.done(host.name, None if result is not None and not (result.failed or result.unreachable)
                       else "unreachable" if result is not None and result.unreachable else "failed")

    def proxy_task(host):
        if host.name in in_run:         # also a backend of this run: that role first, on the same host
            board.wait_done([host.name])
        return converge(proxy_role, host, inventory, options, connections, reporter, facts,
                        gate=None if options.check else proxy_gate(host, inventory, options, in_run, board),
                        slots=slots)

    # Proxies first: their preparing (installing Apache) is the long pole, and it waits for no one.
    with ThreadPoolExecutor(max_workers=max(1, len(proxies))) as ppool, \
            ThreadPoolExecutor(max_workers=max(1, min(options.forks, len(backends_)))) as bpool:
        pfutures = [ppool.submit(proxy_task, h) for h in proxies]
        bfutures = [bpool.submit(backend_task, h) for h in backends_]
        return [{h.name: f.result() for h, f in zip(backends_, bfutures)},
                {h.name: f.result() for h, f in zip(proxies, pfutures)}]


ANSWER_WAIT = 30        # s a proxy's switch waits for its backends' apps to answer it


def proxy_gate(host, inventory, options, in_run: set[str], board: Board) -> Gate:
    """A proxy's switch waits for the backends it routes to that this run converges, then checks,
    from the proxy, that every app it routes to answers."""
    members = proxy.upstreams(host, inventory, options)
    needs = tuple(dict.fromkeys(m.host for m in members if m.host in in_run))
    label = f"backends answer ({len(members)} app{'s' if len(members) != 1 else ''})"
    return Gate(board, needs, (label, answer_script([m.url() + health_path(inventory, m) for m in members],
                                                    ANSWER_WAIT)))


def health_path(inventory, member) -> str:
    """The path a member's app answers its health checks on (its `health` setting, / by default)."""
    app = next(a for a in inventory.hosts[member.host].apps if a["name"] == member.app)
    return setting(app, "health")


def _acme(proxies, converged: dict, seen: dict, inventory, options, connections, reporter, began: float) -> dict:
    """tls: acme after the proxies converged (provision.certificates), on those that did."""
    ready = [h for h in proxies if tls.mode(h) == "acme" and h.name in seen
             and not (converged[h.name].failed or converged[h.name].unreachable)]
    if not ready:
        return {}
    # lazy: the ACME client (acme, josepy, requests) only for proxies with tls: acme
    from . import certificates
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
    # lazy: http.client (and email's parsers) cost ~8 ms of start-up, needed only once the run is done
    import http.client
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
