"""Rolling backend updates: converge backends a few at a time, each drained from every proxy's
balancer first (balancer/drain.py, through balancer-manager on the proxy's own loopback) and brought back once its
apps answer again on their `health` path. Hosts with nothing to change are never drained."""
from __future__ import annotations

from dataclasses import replace

from .engine import Options, run_role
from .balancer.drain import balanced as balanced_proxies, member_urls, set_drain, wait_in_rotation
from .balancer.members import answer_script
from .inventory.apps import setting


def health_urls(host, app: str | None = None) -> list[str]:
    """Each app's `health` URL on the host's private address (``app``: that one only)."""
    return [f"http://{host.private_address}:{a['port']}{setting(a, 'health')}"
            for a in host.apps if app is None or a["name"] == app]


def rolling(role, hosts, inventory, options: Options, connections, reporter, serial: int, proxies,
            facts: dict | None = None) -> dict:
    """Converge ``hosts`` ``serial`` at a time; stops at the first batch that fails."""
    balanced = balanced_proxies(proxies, options.mode)
    results = {}
    for start in range(0, len(hosts), serial):
        batch = hosts[start:start + serial]
        facts = facts if facts is not None else {}
        preview = run_role(role, batch, inventory, replace(options, check=True),
                           connections, _Quiet(), facts)
        changing = [h for h in batch if any(s.status == "changed" for s in preview[h.name].steps)]
        urls = [u for h in changing for u in member_urls(h)]
        kept = set()        # members an operator had drained already stay drained afterwards
        if urls:
            kept = _on_proxies(balanced, connections, urls, True, reporter)
        for h in batch:
            if h not in changing:
                results[h.name] = preview[h.name]       # nothing to change: no second round trip
                reporter.host_ok(h.name, len(preview[h.name].steps))
        done = run_role(role, changing, inventory, options, connections, reporter, facts) if changing else {}
        results.update(done)
        if any(r.failed or r.unreachable for r in done.values()):
            # A release that failed its checks was switched back: once every app answers its
            # health path again, the batch goes back into the balancer; else it stays drained.
            answering = bool(urls) and not any(r.unreachable for r in done.values()) and all(
                connections.get(p).run_script(answer_script([u for h in changing for u in health_urls(h)], 10),
                                              timeout=30, silence=30).rc == 0 for p in balanced[:1])
            if answering:
                _on_proxies(balanced, connections, [u for u in urls if u not in kept], False, reporter)
            reporter.info(f"rollout stopped after {', '.join(h.name for h in batch)}: a host failed; " +
                          ("its apps answer their health path, so it is back in the balancer" if answering
                           else "its members stay drained"))
            break
        if urls:
            checks = [u for h in changing for u in health_urls(h)]
            for proxy in balanced[:1]:
                rc = connections.get(proxy).run_script(answer_script(checks), timeout=60, silence=60)
                if rc.rc != 0:
                    reporter.failed(proxy.name, "rollout", rc.stderr.strip())
                    return results
            back = [u for u in urls if u not in kept]
            if back:
                _on_proxies(balanced, connections, back, False, reporter)
                for outcome in wait_in_rotation(balanced, back, connections):
                    if not outcome.ok:
                        reporter.failed(outcome.proxy, "rollout", outcome.error)
                        return results
            if kept:
                reporter.info(f"rollout: left drained as found: {', '.join(sorted(kept))}")
            reporter.info(f"rollout: {', '.join(h.name for h in changing)} updated and back in the balancer")
    return results


def _on_proxies(proxies, connections, urls, drain, reporter) -> set[str]:
    """Set or clear Drain on every proxy; returns the members that were drained before."""
    drained = set()
    for outcome in set_drain(proxies, urls, drain, connections):
        drained |= outcome.drained_before()
        if not outcome.ok:
            reporter.failed(outcome.proxy, "drain" if drain else "undrain", outcome.error)
    return drained


class _Quiet:
    """A reporter for the preview pass: says nothing."""

    def __getattr__(self, name):
        return lambda *a, **kw: None
