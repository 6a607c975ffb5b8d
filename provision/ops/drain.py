"""`invoke drain`/`undrain`: set or clear Drain for a backend's members on every balancing proxy."""
from __future__ import annotations

import sys

from ..balancer.drain import DrainError, balanced, member_urls, set_drain, wait_idle
from .session import find_host, open_run


def main(inventory_path: str, host_name: str, drain: bool, app: str | None = None, wait: bool = False,
         timeout: float = 60, accept_new_host_keys=False, prompt_for_sudo_password=False, stream=None) -> int:
    """Set or clear Drain for a backend's members on every balancing proxy; report each proxy."""
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
