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

from .. import apply, syntax
from ..errors import UserError
from . import balancer_manager as bm


class DrainError(UserError):
    pass


RECORD = "drained.conf"
RECORD_HEADER = "# Written by provision drain/undrain: members kept drained over reloads. Root-only."
VARIABLE_PREFIX = "provision_member_"
# Until the names were made one-to-one, every character but a letter or digit became '_', so that
# web-1.example:8080 and web.1.example:8080 shared one variable: undraining one undrained both.
LEGACY_PREFIX = "provision_drain_"


def status_variable(url: str) -> str:
    """The config variable holding a member's drain status: its address:port with every character
    but an ASCII letter or digit written as '_' and its UTF-8 bytes in hex (10.0.0.1:80 ->
    provision_member_10_2e0_2e0_2e1_3a80), one-to-one, and only letters, digits and '_'."""
    return VARIABLE_PREFIX + "".join(c if c.isascii() and c.isalnum() else "".join(f"_{b:02x}" for b in c.encode())
                                     for c in bm.address_of(url))


def legacy_status_variable(url: str) -> str:
    """The name earlier releases gave the variable: what drained.conf records on their hosts hold."""
    return LEGACY_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", bm.address_of(url))


def include_pattern(platform) -> str:
    """What the routes file includes: a wildcard, so that IncludeOptional skips it silently while
    no drain was ever recorded (the temp files, RECORD.XXXXXX, never match)."""
    return f"{posixpath.dirname(platform.routes_path)}/{RECORD.replace('.conf', '*.conf')}"


def record_script(urls: list[str], drain: bool) -> str:
    """Shell: add (drain) or remove (undrain) the members' +N lines in RECORD, in the first
    routes folder of the platforms that exists (temp file, then rename). An undrain removes the
    legacy names' lines too; a drain writes them as well while a routes file there still reads
    them (a proxy not deployed since the names changed)."""
    from ..facts import every_platform
    folders = sorted({posixpath.dirname(p.routes_path) for p in every_platform()})
    lines = [f"Define {status_variable(u)} +N" for u in urls]
    legacy = [f"Define {legacy_status_variable(u)} +N" for u in urls]
    others = " ".join(f"-e {shlex.quote(f'Define {name(u)} ')}" for u in urls
                      for name in (status_variable, legacy_status_variable))
    out = [
        "rec=",
        f"for d in {' '.join(shlex.quote(f) for f in folders)}; do "
        f"[ -d \"$d\" ] && {{ rec=\"$d/{RECORD}\"; break; }}; done",
        '[ -n "$rec" ] || { echo "no provision routes folder on this proxy: deploy it first" >&2; exit 1; }',
        f"keep=$(grep '^Define ' \"$rec\" 2>/dev/null | grep -v -F {others} || true)",
        f"legacy=; ! grep -qsF {shlex.quote('${' + LEGACY_PREFIX)} \"${{rec%/*}}\"/*.inc || legacy=1",
        'tmp=$(umask 077; mktemp "$rec.XXXXXX")',
        f"{{ echo {shlex.quote(RECORD_HEADER)}; {{ printf '%s\\n' \"$keep\"; "
        + (f"printf '%s\\n' {' '.join(shlex.quote(x) for x in lines)}; "
           f"[ -z \"$legacy\" ] || printf '%s\\n' {' '.join(shlex.quote(x) for x in legacy)}; " if drain else "")
        + "} | grep . | sort -u; } > \"$tmp\"",
        'chmod 600 "$tmp" && mv -f "$tmp" "$rec"',
    ]
    return "\n".join(out) + "\n"


def upgrade_script(folder: str, urls: list[str]) -> str:
    """Shell, run when a routes file in ``folder`` is written: a drain recorded under a legacy name
    (by an earlier release) is recorded under the new name too, before any reload reads the new
    routes file, so that a deploy after an upgrade keeps drained members drained. The legacy lines
    stay (unused by the new file, they keep the old one right if configtest restores it). Where a
    legacy name was shared, every member that had it stays drained, as it was."""
    pairs = sorted({(legacy_status_variable(u), status_variable(u)) for u in urls})
    if not pairs:
        return ""
    rec = shlex.quote(f"{folder}/{RECORD}")
    adds = "; ".join(f"if grep -qxF {shlex.quote(f'Define {old} +N')} {rec}; then "
                     f"echo {shlex.quote(f'Define {new} +N')}; fi" for old, new in pairs)
    return "\n".join([
        f"if grep -qs '^Define {LEGACY_PREFIX}' {rec}; then",
        f"  tmp=$(umask 077; mktemp {rec}.XXXXXX)",
        f"  {{ echo {shlex.quote(RECORD_HEADER)}; {{ grep '^Define ' {rec}; {adds}; }} | sort -u; }} > \"$tmp\"",
        f"  chmod 600 \"$tmp\" && mv -f \"$tmp\" {rec}",
        "fi",
    ])


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
    return [f"http://{syntax.host_port(host.private_address, a['port'])}" for a in apps]


def balanced(proxies, mode: str | None = None) -> list:
    """The proxies that run a balancer (single mode has no members to drain)."""
    return [p for p in proxies if (mode or p.vars.get("proxy_mode", "balancer")) == "balancer"]


def set_drain(proxies, urls: list[str], drain: bool, connections, lock: bool = True,
              timeout: float = 60) -> list[ProxyOutcome]:
    """Set (drain=True) or clear Drain for ``urls`` on every proxy, in parallel; one exec each.
    Each outcome holds the members as balancer-manager showed them afterwards."""
    script = bm.set_drain_script(urls, drain, before_change=record_script(urls, drain))
    if lock:        # the host lock applies take: a drain never lands in the middle of a deploy's apply
        script, timeout = apply.locked(script), timeout + apply.LOCK_WAIT

    def one(proxy):
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
            ran = connections.get(proxy).run_script(bm.read_command() + "\n", timeout=30)
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
