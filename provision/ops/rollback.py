"""`invoke rollback`: switch each chosen backend's apps of your own back to their previous kept
release (releases.rollback_script), one host at a time, with the rolling update's rules: the
host is drained from every balancing proxy first, and undrained only once each app's `health`
answers again. No build and no upload: the release is already on the host."""
from __future__ import annotations

import sys
import time

from .. import apply
from ..balancer.drain import balanced, set_drain
from ..inventory.apps import is_code_app, setting
from ..releases import ROLLED_BACK, rollback_script
from ..roles import backends
from ..rollout import health_urls, wait_script
from .session import OpsError, open_run, ssh_counts


def chosen(inventory, limit: str | None, app: str | None) -> list:
    """(host, its apps to roll back) for every backend in --limit that has one."""
    hosts = inventory.select(limit) if limit else inventory.group(backends.GROUP)
    found = []
    for h in hosts:
        if h.name not in inventory.groups.get(backends.GROUP, []):
            continue
        apps = [a for a in h.apps if is_code_app(a) and (app is None or a["name"] == app)]
        if apps:
            found.append((h, apps))
    if not found:
        what = f"an app named {app!r} of your own" if app else "an app of your own (project or package)"
        raise OpsError(f"{inventory.path}: no backend{' in --limit' if limit else ''} has {what}")
    return found


def script(host, apps) -> str:
    """Each app's rollback in turn, under the host lock; the first that fails stops the others."""
    parts = []
    for a in apps:
        home, bind = backends.app_home(a), f"{host.private_address}:{a['port']}"
        parts.append("( set -e\n" + rollback_script(a["name"], home, backends.app_user(a), backends.unit_name(a),
                                                    f"http://{bind}{setting(a, 'health')}", setting(a, "health"))
                     + ") || exit 1\n")
    return apply.locked("".join(parts))


def main(inventory_path: str, limit: str | None = None, app: str | None = None, accept_new_host_keys=False,
         prompt_for_sudo_password=False, stream=None) -> int:
    stream = stream or sys.stdout
    inventory, options, connections = open_run(inventory_path, accept_new_host_keys, prompt_for_sudo_password)
    targets = chosen(inventory, limit, app)
    proxies = balanced(inventory.group("proxies"))
    failed = False
    try:
        for host, apps in targets:
            started = time.monotonic()
            urls = [f"http://{host.private_address}:{a['port']}" for a in apps]
            kept = set()
            for o in set_drain(proxies, urls, True, connections):
                kept |= o.drained_before()
                if not o.ok:
                    print(f"{o.proxy} | failed | drain {host.name}: {o.error}", file=stream)
                    failed = True
            if failed:      # nothing was switched: the members it drained take requests again
                set_drain(proxies, [u for u in urls if u not in kept], False, connections)
                break
            ran = connections.get(host).run_script(script(host, apps), timeout=apply.LOCK_WAIT + 120 * len(apps))
            for line in ran.stdout.splitlines():
                if line.startswith(ROLLED_BACK):
                    name, old, new = line[len(ROLLED_BACK):].split()
                    print(f"{host.name} | rolled back | {name}: {old} -> {new}", file=stream)
            if ran.rc != 0:
                why = [ln for ln in (ran.stdout + ran.stderr).splitlines() if ln.startswith(apply.CHECK_FAILED)]
                print(f"{host.name} | failed | {why[-1] if why else f'exit {ran.rc}'}; its members stay drained",
                      file=stream)
                failed = True
                break
            checks = [u for a in apps for u in health_urls(host, a["name"])]
            for proxy in proxies[:1]:
                answered = connections.get(proxy).run_script(wait_script(checks), timeout=60, silence=60)
                if answered.rc != 0:
                    print(f"{proxy.name} | failed | {host.name}: {answered.stderr.strip()}", file=stream)
                    failed = True
            if failed:
                break
            back = [u for u in urls if u not in kept]
            for o in set_drain(proxies, back, False, connections) if back else []:
                if not o.ok:
                    print(f"{o.proxy} | failed | undrain {host.name}: {o.error}", file=stream)
                    failed = True
            print(f"{host.name} | done | back in the balancer after {time.monotonic() - started:.1f} s", file=stream)
            if failed:
                break
    finally:
        connections.close()
    for name, c in ssh_counts(connections).items():
        print(f"ssh: {name} connections={c['connections']} execs={c['execs']} uploads={c['uploads']}", file=stream)
    return 2 if failed else 0
