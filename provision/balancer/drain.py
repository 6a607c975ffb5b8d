"""Drain and undrain members on every proxy, through balancer-manager on each proxy's loopback,
recorded so that the drain holds over reloads (record.py). `invoke drain`/`undrain` (ops/drain.py)
and the rolling update (rollout.py) both use set_drain.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .. import apply, syntax
from ..errors import UserError
from ..transport import Unreachable
from . import manager as bm
from .record import record_script


class DrainError(UserError):
    pass


@dataclass
class ProxyOutcome:
    """One proxy's answer to a drain or undrain."""
    proxy: str
    ok: bool
    error: str = ""
    members: list = field(default_factory=list)     # manager.WorkerRow, as the page showed after
    before: list = field(default_factory=list)      # ... and before the change
    unreachable: bool = False

    @property
    def status(self) -> str:
        return "ok" if self.ok else "unreachable" if self.unreachable else "failed"

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
        except Unreachable as exc:
            return ProxyOutcome(proxy.name, False, str(exc), unreachable=True)
        except Exception as exc:        # timed out: reported per proxy
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


def wait_in_rotation(proxies, urls: list[str], connections, timeout: float = 30,
                     poll: float = 0.2) -> list[ProxyOutcome]:
    """Poll each proxy's balancer-manager until none of ``urls`` is held out by its health checks
    (HcFl). mod_proxy_hcheck checks drained members too, so a member whose app restarted while it
    was drained can be out for `hcpasses` more checks after its undrain: the next host of a rolling
    update waits for that."""
    return _poll_members(proxies, urls, connections, timeout, poll,
                         lambda members: list(dict.fromkeys(m.url for m in members if "HcFl" in m.flags)),
                         lambda out: f"health checks still hold out {', '.join(out)} after {timeout:.0f} s")


def wait_idle(proxies, urls: list[str], connections, timeout: float = 60, poll: float = 0.5) -> list[ProxyOutcome]:
    """Poll each proxy's balancer-manager until none of ``urls`` has a request in flight (Busy 0)."""
    return _poll_members(proxies, urls, connections, timeout, poll,
                         lambda members: [f"{m.url} busy={m.busy}" for m in members if m.busy],
                         lambda busy: f"still in flight after {timeout:.0f} s: {', '.join(busy)}")


def _poll_members(proxies, urls, connections, timeout, poll, pending, failure) -> list[ProxyOutcome]:
    """Read each proxy's members of ``urls`` until ``pending(members)`` is empty or ``timeout`` ends."""
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
            waiting = pending(members)
            if not waiting:
                outcomes.append(ProxyOutcome(proxy.name, True, members=members))
                break
            if time.monotonic() > deadline:
                outcomes.append(ProxyOutcome(proxy.name, False, failure(waiting), members))
                break
            time.sleep(poll)
    return outcomes
