"""`provision drain`/`undrain PATTERN`: set or clear Drain for the members of the backends a host
pattern names, on every balancing proxy."""
from __future__ import annotations

import sys

from .. import report
from ..balancer.drain import DrainError, balanced, member_urls, set_drain, wait_idle
from .session import OpsError, open_run


def main(sources, pattern: str, drain: bool, app: str | None = None, wait: bool = False, timeout: float = 60,
         accept_new_host_keys=False, sudo_password=None, extra_vars=(), json_path=None, trace=None,
         stream=None) -> int:
    """Set or clear Drain for the chosen backends' members on every balancing proxy; report each proxy."""
    stream = stream or sys.stdout
    inventory, options, connections = open_run(sources, extra_vars, accept_new_host_keys, sudo_password,
                                               trace=trace)
    chosen = inventory.pick(pattern, "drain" if drain else "undrain")
    backends = set(inventory.groups.get("backends", []))
    for host in chosen:
        if host.name not in backends:
            raise OpsError(f"{inventory.path}: host {host.name!r} is not in group 'backends'")
    urls = [url for host in chosen for url in member_urls(host, app)]
    names = ", ".join(h.name for h in chosen)
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
                print(f"{o.proxy} | {o.status} | {o.error}", file=stream)
        if wait and drain and any(o.ok for o in outcomes):
            ready = {o.proxy for o in outcomes if o.ok}
            for o in wait_idle([p for p in proxies if p.name in ready], urls, connections, timeout):
                print(f"{o.proxy} | {'idle' if o.ok else 'failed'} | "
                      f"{'no request in flight to ' + names if o.ok else o.error}", file=stream)
                if not o.ok:
                    outcomes = [o if x.proxy == o.proxy else x for x in outcomes]
    finally:
        connections.close()
    done = [o.proxy for o in outcomes if o.ok]
    print(f"{names} {word} on {len(done)} of {len(proxies)} proxies: {', '.join(done) or 'none'}", file=stream)
    code = report.exit_for(any(o.status == "failed" for o in outcomes), any(o.status == "unreachable" for o in outcomes))
    if json_path:
        report.write_json(json_path, report.document(
            "drain" if drain else "undrain",
            {o.proxy: {"status": o.status, "error": o.error, "members": [m.as_dict() for m in o.members]}
             for o in outcomes}, code, {"backends": [h.name for h in chosen], "app": app}))
    return code
