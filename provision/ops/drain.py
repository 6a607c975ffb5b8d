"""Drain and undrain a backend's members on every proxy, through balancer-manager on each proxy's
loopback. `invoke drain`/`undrain` and the rolling update (rollout.py) both use set_drain.

balancer-manager's changes live in shared memory, which a graceful reload makes anew from the
config (BalancerPersist would keep old member settings over a changed config too). So a drain is
also recorded in the config: each BalancerMember's status comes from a variable that the routes
file defines as -N, and a drain redefines it as +N in RECORD (next to the routes file, root-only),
which the routes file includes. Every reload, by a deploy or anyone else, then starts with the
member drained. The deploy never writes RECORD, so a drain changes nothing a deploy plans.
CentOS 7's 2.4.6 has each piece: Define NAME VALUE and ${NAME} (core, 2.4.0 on), IncludeOptional
(2.3.6 on), and BalancerMember status=+N/-N (mod_proxy.c set_worker_param -> proxy_util.c
ap_proxy_set_wstatus, whose flag table holds PROXY_WORKER_DRAIN 'N' at 2.4.6); measured on
Debian 12's 2.4.6x in the lab.
"""
from __future__ import annotations

import posixpath
import re
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .. import apply
from ..errors import UserError
from . import balancer_manager as bm


class DrainError(UserError):
    pass


RECORD = "drained.conf"
RECORD_HEADER = "# Written by provision drain/undrain: members kept drained over reloads. Root-only."


def status_variable(url: str) -> str:
    """The config variable holding a member's drain status (${...}: letters, digits, _)."""
    return "provision_drain_" + re.sub(r"[^A-Za-z0-9]", "_", bm.address_of(url))


def include_pattern(platform) -> str:
    """What the routes file includes: a wildcard, so that IncludeOptional skips it silently while
    no drain was ever recorded (the temp files, RECORD.XXXXXX, never match)."""
    return f"{posixpath.dirname(platform.routes_path)}/{RECORD.replace('.conf', '*.conf')}"


def record_script(urls: list[str], drain: bool) -> str:
    """Shell: add (drain) or remove (undrain) the members' +N lines in RECORD, in the first
    routes folder of the platforms that exists (temp file, then rename)."""
    from ..facts import every_platform
    folders = sorted({posixpath.dirname(p.routes_path) for p in every_platform()})
    lines = [f"Define {status_variable(u)} +N" for u in urls]
    others = " ".join(f"-e {shlex.quote(f'Define {status_variable(u)} ')}" for u in urls)
    out = [
        "rec=",
        f"for d in {' '.join(shlex.quote(f) for f in folders)}; do "
        f"[ -d \"$d\" ] && {{ rec=\"$d/{RECORD}\"; break; }}; done",
        '[ -n "$rec" ] || { echo "no provision routes folder on this proxy: deploy it first" >&2; exit 1; }',
        f"keep=$(grep '^Define ' \"$rec\" 2>/dev/null | grep -v -F {others} || true)",
        'tmp=$(umask 077; mktemp "$rec.XXXXXX")',
        f"{{ echo {shlex.quote(RECORD_HEADER)}; {{ printf '%s\\n' \"$keep\"; "
        + (f"printf '%s\\n' {' '.join(shlex.quote(x) for x in lines)}; " if drain else "")
        + "} | grep . | sort -u; } > \"$tmp\"",
        'chmod 600 "$tmp" && mv -f "$tmp" "$rec"',
    ]
    return "\n".join(out) + "\n"


@dataclass
class ProxyOutcome:
    proxy: str
    ok: bool
    error: str = ""
    members: list = field(default_factory=list)     # balancer_manager.Member, as the page showed after
    before: list = field(default_factory=list)      # ... and before the change

    def drained_before(self) -> set[str]:
        """The member URLs (http://, as member_urls gives them) that were drained before."""
        return {f"http://{m.address}" for m in self.before if "Drn" in m.flags}


def member_urls(host, app: str | None = None) -> list[str]:
    """The balancer member URLs of a backend's apps (one app with ``app``)."""
    apps = [a for a in host.apps if app is None or a["name"] == app]
    if app is not None and not apps:
        raise DrainError(f"host {host.name!r}: no app named {app!r} "
                         f"(it has {', '.join(a['name'] for a in host.apps) or 'none'})")
    return [f"http://{host.private_address}:{a['port']}" for a in apps]


def site_names(proxy) -> list[str]:
    """The long form's server names on a proxy (each site's vhost has its own balancers), or none:
    the short form's one vhost answers on the loopback as it is."""
    return [s["server_name"] for s in getattr(proxy, "vars", {}).get("sites") or []]


def balanced(proxies, mode: str | None = None) -> list:
    """The proxies that run a balancer (single mode has no members to drain)."""
    return [p for p in proxies if (mode or p.vars.get("proxy_mode", "balancer")) == "balancer"]


def set_drain(proxies, urls: list[str], drain: bool, connections, lock: bool = True,
              timeout: float = 60) -> list[ProxyOutcome]:
    """Set (drain=True) or clear Drain for ``urls`` on every proxy, in parallel; one exec each.
    Each outcome holds the members as balancer-manager showed them afterwards."""
    if lock:        # the host lock applies take: a drain never lands in the middle of a deploy's apply
        timeout = timeout + apply.LOCK_WAIT

    def one(proxy):
        script = bm.set_drain_script(urls, drain, before_change=record_script(urls, drain), sites=site_names(proxy))
        if lock:
            script = apply.locked(script)
        try:
            ran = connections.get(proxy).run_script(script, timeout=timeout)
        except Exception as exc:        # unreachable or timed out: reported per proxy
            return ProxyOutcome(proxy.name, False, str(exc))
        if ran.rc == apply.LOCK_BUSY:
            return ProxyOutcome(proxy.name, False, f"another deploy held the host lock for {apply.LOCK_WAIT} s")
        if ran.rc != 0:
            return ProxyOutcome(proxy.name, False, (ran.stderr or ran.stdout).strip()[-300:]
                                or f"exit {ran.rc}")
        first, then = bm.split_before_after(ran.stdout)
        try:
            members = bm.of_urls(bm.parse(then), urls)
            before = bm.of_urls(bm.parse(first), urls)
        except bm.ManagerError as exc:
            return ProxyOutcome(proxy.name, False, str(exc))
        missing = sorted(u for u in urls if bm.address_of(u) not in {m.address for m in members})
        if missing:
            return ProxyOutcome(proxy.name, False, f"not a member of its balancer: {', '.join(missing)}")
        wrong = [m.url for m in members if ("Drn" in m.flags) != drain]
        if wrong:
            return ProxyOutcome(proxy.name, False, f"Drain still {'off' if drain else 'on'} for {', '.join(wrong)}",
                                members, before)
        return ProxyOutcome(proxy.name, True, members=members, before=before)

    if not proxies:
        return []
    with ThreadPoolExecutor(max_workers=min(20, len(proxies))) as pool:
        return list(pool.map(one, proxies))


def wait_idle(proxies, urls: list[str], connections, timeout: float = 60, poll: float = 0.5) -> list[ProxyOutcome]:
    """Poll each proxy's balancer-manager until none of ``urls`` has a request in flight (Busy 0)."""
    deadline = time.monotonic() + timeout
    outcomes = []
    for proxy in proxies:
        while True:
            ran = connections.get(proxy).run_script(bm.read_command(site_names(proxy)) + "\n", timeout=30)
            try:
                members = bm.of_urls(bm.parse(ran.stdout), urls)
            except bm.ManagerError as exc:
                outcomes.append(ProxyOutcome(proxy.name, False, str(exc)))
                break
            if all(m.busy == 0 for m in members):
                outcomes.append(ProxyOutcome(proxy.name, True, members=members))
                break
            if time.monotonic() > deadline:
                busy = ", ".join(f"{m.url} busy={m.busy}" for m in members if m.busy)
                outcomes.append(ProxyOutcome(proxy.name, False, f"still in flight after {timeout:.0f} s: {busy}",
                                             members))
                break
            time.sleep(poll)
    return outcomes


def main(inventory_path: str, host_name: str, drain: bool, app: str | None = None, wait: bool = False,
         timeout: float = 60, accept_new_host_keys=False, prompt_for_sudo_password=False, stream=None) -> int:
    """Set or clear Drain for a backend's members on every balancing proxy; report each proxy."""
    import sys
    from .session import find_host, open_run
    stream = stream or sys.stdout
    inventory, options, connections = open_run(inventory_path, accept_new_host_keys, prompt_for_sudo_password)
    host = find_host(inventory, host_name, "backends")
    urls = member_urls(host, app)
    proxies = balanced(inventory.group("proxies"))
    if not proxies:
        raise DrainError(f"{inventory.path}: no proxy runs a balancer (proxy_mode single has no members)")
    word = "drained" if drain else "undrained"
    try:
        outcomes = set_drain(proxies, urls, drain, connections, timeout=timeout)
        for o in outcomes:
            if o.ok:
                several = len({m.balancer for m in o.members}) > 1      # the host is in several pools
                states = ", ".join(f"{m.route} {m.address} {m.state}" + (f" ({m.balancer})" if several else "")
                                   for m in o.members)
                print(f"{o.proxy} | {word} | {states}", file=stream)
            else:
                print(f"{o.proxy} | failed | {o.error}", file=stream)
        done = [o.proxy for o in outcomes if o.ok]
        if wait and drain and done:
            for o in wait_idle([p for p in proxies if p.name in done], urls, connections, timeout):
                print(f"{o.proxy} | {'idle' if o.ok else 'failed'} | "
                      f"{'no request in flight to ' + host_name if o.ok else o.error}", file=stream)
                if not o.ok:
                    done.remove(o.proxy)
    finally:
        connections.close()
    print(f"{host_name} {word} on {len(done)} of {len(proxies)} proxies: {', '.join(done) or 'none'}", file=stream)
    return 0 if len(done) == len(proxies) else 2
