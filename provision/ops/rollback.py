"""`provision rollback`: switch each chosen backend's apps of your own back to their previous kept
release (releases.rollback_script), one host at a time, with the rolling update's rules: the
host is drained from every balancing proxy first, and undrained only once each app's `health`
answers again. No build and no upload: the release is already on the host."""
from __future__ import annotations

import sys
import time

from .. import apply, report
from ..balancer.drain import balanced, set_drain, wait_in_rotation
from ..interrupt import recap_on_interrupt
from ..inventory.apps import is_code_app, setting
from ..releases import ROLLED_BACK, rollback_script
from ..roles import backends
from ..balancer.members import answer_script
from ..rollout import health_urls
from ..transport import Unreachable
from .session import OpsError, interrupted_recap, open_run, ssh_counts


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


def main(sources, limit: str | None = None, app: str | None = None, accept_new_host_keys=False,
         sudo_password=None, extra_vars=(), json_path=None, trace=None, stream=None) -> int:
    """0 every chosen host rolled back; 2 one failed (it stops there, its members stay drained);
    4 one could not be reached (nothing changed on it); 130 interrupted."""
    stream = stream or sys.stdout
    inventory, options, connections = open_run(sources, extra_vars, accept_new_host_keys, sudo_password,
                                               trace=trace)
    targets = chosen(inventory, limit, app)
    proxies = balanced(inventory.group("proxies"))
    done: dict[str, str] = {}       # host -> changed, failed or unreachable

    def last_words():
        interrupted_recap([h for h, _ in targets], done, lambda word: word, stream)
    try:
        with recap_on_interrupt(last_words):
            failed, unreachable = _roll_back(targets, proxies, connections, done, stream)
    finally:
        connections.close()
    for name, c in ssh_counts(connections).items():
        print(f"ssh: {name} connections={c['connections']} execs={c['execs']} uploads={c['uploads']}", file=stream)
    code = report.exit_for(failed, unreachable)
    if json_path:
        report.write_json(json_path, report.document("rollback", {n: {"status": w} for n, w in done.items()}, code,
                                                     {"ssh": ssh_counts(connections)}))
    return code


def _roll_back(targets, proxies, connections, done: dict, stream) -> tuple[bool, bool]:
    """Host by host, stopping at the first that fails or cannot be reached; (failed, unreachable)."""
    for host, apps in targets:
        done[host.name] = _one(host, apps, proxies, connections, stream)
        if done[host.name] != "changed":
            return done[host.name] == "failed", done[host.name] == "unreachable"
    return False, False


def _one(host, apps, proxies, connections, stream) -> str:
    """Drain the host, switch its apps back, wait for their health, undrain: changed, failed or unreachable."""
    started = time.monotonic()
    urls = [f"http://{host.private_address}:{a['port']}" for a in apps]
    kept, failed = set(), False
    for o in set_drain(proxies, urls, True, connections):
        kept |= o.drained_before()
        if not o.ok:
            print(f"{o.proxy} | failed | drain {host.name}: {o.error}", file=stream)
            failed = True
    if failed:      # nothing was switched: the members it drained take requests again
        set_drain(proxies, [u for u in urls if u not in kept], False, connections)
        return "failed"
    try:
        ran = connections.get(host).run_script(script(host, apps), timeout=apply.LOCK_WAIT + 120 * len(apps))
    except Unreachable as exc:      # nothing ran on it: its members take requests again
        print(f"{host.name} | unreachable | {exc}", file=stream)
        set_drain(proxies, [u for u in urls if u not in kept], False, connections)
        return "unreachable"
    for line in ran.stdout.splitlines():
        if line.startswith(ROLLED_BACK):
            name, old, new = line[len(ROLLED_BACK):].split()
            print(f"{host.name} | rolled back | {name}: {old} -> {new}", file=stream)
    if ran.rc != 0:
        why = [ln for ln in (ran.stdout + ran.stderr).splitlines() if ln.startswith(apply.CHECK_FAILED)]
        print(f"{host.name} | failed | {why[-1] if why else f'exit {ran.rc}'}; its members stay drained",
              file=stream)
        return "failed"
    checks = [u for a in apps for u in health_urls(host, a["name"])]
    for proxy in proxies[:1]:
        answered = connections.get(proxy).run_script(answer_script(checks), timeout=60, silence=60)
        if answered.rc != 0:
            print(f"{proxy.name} | failed | {host.name}: {answered.stderr.strip()}", file=stream)
            return "failed"
    back = [u for u in urls if u not in kept]
    for o in set_drain(proxies, back, False, connections) if back else []:
        if not o.ok:
            print(f"{o.proxy} | failed | undrain {host.name}: {o.error}", file=stream)
            failed = True
    for o in wait_in_rotation(proxies, back, connections) if back and not failed else []:
        if not o.ok:
            print(f"{o.proxy} | failed | {host.name}: {o.error}", file=stream)
            failed = True
    print(f"{host.name} | done | back in the balancer after {time.monotonic() - started:.1f} s", file=stream)
    return "failed" if failed else "changed"
