"""Whether balancer members answer, asked from the proxy itself (where Apache will reach them):
a shell loop for a script run on the proxy. Used before a deploy switches a proxy to its backends
and before a rolling update puts a backend back in the balancer."""
from __future__ import annotations

import shlex


def answer_script(urls: list[str], seconds: int = 30) -> str:
    """Poll until every URL answers 2xx or 3xx (curl -f), 0.1 s between tries, for at most
    ``seconds``; then exit 1 naming the ones that did not. No fixed sleep."""
    checks = " && ".join(f"curl -sf -o /dev/null --max-time 2 {shlex.quote(u)}" for u in urls)
    silent = " ".join(shlex.quote(u) for u in urls)
    return (f"i=0; until {checks}; do i=$((i+1)); [ $i -le {seconds * 10} ] || "
            f"{{ for u in {silent}; do curl -sf -o /dev/null --max-time 2 \"$u\" || echo \"$u did not answer\"; done >&2; "
            f"echo 'apps did not answer in {seconds} s' >&2; exit 1; }}; sleep 0.1; done\n")
