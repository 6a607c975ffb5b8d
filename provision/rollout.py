"""Rolling backend updates: converge backends a few at a time, each drained from every proxy's
balancer first (through balancer-manager on the proxy's own loopback) and brought back once its
apps answer again. Hosts with nothing to change are never drained."""
from __future__ import annotations

import shlex
from dataclasses import replace

from . import apply
from .engine import LOCK_BUSY, Options, last_words, lock_watch, run_role

BALANCER = "mycluster"
MANAGER = "http://127.0.0.1/balancer-manager"


def member_urls(host) -> list[str]:
    return [f"http://{host.private_address}:{a['port']}" for a in host.apps]


def drain_script(urls: list[str], disabled: bool) -> str:
    """Set or clear the Disabled flag of balancer members; balancer-manager wants its nonce."""
    lines = [
        "set -e",
        f"nonce=$(curl -sf {shlex.quote(MANAGER)} | sed -n 's/.*nonce=\\([0-9a-f-]*\\).*/\\1/p' | head -n 1)",
        '[ -n "$nonce" ] || { echo "balancer-manager gave no nonce" >&2; exit 1; }',
    ]
    for url in urls:
        data = f"w={url}&b={BALANCER}&w_status_D={1 if disabled else 0}&nonce="
        lines.append(f"curl -sf -o /dev/null -H {shlex.quote('Referer: ' + MANAGER)} --data {shlex.quote(data)}\"$nonce\" "
                     f"{shlex.quote(MANAGER)}")
    return "\n".join(lines) + "\n"


def wait_script(urls: list[str], seconds: int = 30) -> str:
    """Poll until every app answers (no fixed sleep: 0.1 s between tries, bounded)."""
    checks = " && ".join(f"curl -sf -o /dev/null --max-time 2 {shlex.quote(u + '/')}" for u in urls)
    return (f"i=0; until {checks}; do i=$((i+1)); [ $i -le {seconds * 10} ] || "
            f"{{ echo 'apps did not answer in {seconds} s' >&2; exit 1; }}; sleep 0.1; done\n")


def rolling(role, hosts, inventory, options: Options, connections, reporter, serial: int, proxies,
            facts: dict | None = None) -> dict:
    """Converge ``hosts`` ``serial`` at a time; stops at the first batch that fails."""
    balanced = [p for p in proxies if (options.mode or p.vars.get("proxy_mode", "balancer")) == "balancer"]
    results = {}
    for start in range(0, len(hosts), serial):
        batch = hosts[start:start + serial]
        facts = facts if facts is not None else {}
        preview = run_role(role, batch, inventory, replace(options, check=True),
                           connections, _Quiet(), facts)
        changing = [h for h in batch if any(s.status == "changed" for s in preview[h.name].steps)]
        urls = [u for h in changing for u in member_urls(h)]
        if urls:
            _on_proxies(balanced, connections, drain_script(urls, True), "drain", reporter)
        for h in batch:
            if h not in changing:
                results[h.name] = preview[h.name]       # nothing to change: no second round trip
                reporter.host_ok(h.name, len(preview[h.name].steps))
        done = run_role(role, changing, inventory, options, connections, reporter, facts) if changing else {}
        results.update(done)
        if any(r.failed or r.unreachable for r in done.values()):
            reporter.info(f"rollout stopped after {', '.join(h.name for h in batch)}: a host failed; "
                          "its members stay drained")
            break
        if urls:
            for proxy in balanced[:1]:
                rc = connections.get(proxy).run_script(wait_script(urls), timeout=60, silence=60)
                if rc.rc != 0:
                    reporter.failed(proxy.name, "rollout", rc.stderr.strip())
                    return results
            _on_proxies(balanced, connections, drain_script(urls, False), "undrain", reporter)
            reporter.info(f"rollout: {', '.join(h.name for h in changing)} updated and back in the balancer")
    return results


def _on_proxies(proxies, connections, script, what, reporter):
    """Run ``script`` on each proxy under its host lock (it changes the balancer's state)."""
    for proxy in proxies:
        res = connections.get(proxy).run_script(apply.locked(script), timeout=apply.LOCK_WAIT + 60,
                                                on_line=lock_watch(proxy.name, reporter))
        if res.rc == apply.LOCK_BUSY:
            reporter.failed(proxy.name, what, LOCK_BUSY)
        elif res.rc != 0:
            reporter.failed(proxy.name, what, last_words(res.stderr) or last_words(res.stdout))


class _Quiet:
    """A reporter for the preview pass: says nothing."""

    def __getattr__(self, name):
        return lambda *a, **kw: None
