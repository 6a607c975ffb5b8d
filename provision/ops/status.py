"""`invoke status`: what every host is doing now, in one exec per host, all hosts in parallel.

The exec is the deploy's own facts script with a few read-only lines in front: balancer-manager's
page (proxies), whether each app answers on its address (backends), and the last line of the
audit trail. The facts then go through the same plan as ``deploy --check``, so "would a deploy
change anything" costs nothing more.
"""
from __future__ import annotations

import json
import shlex
import sys
from concurrent.futures import ThreadPoolExecutor

from .. import audit, facts as factlib, syntax, tls
from ..balancer import manager as bm
from ..engine import fact_request, plan_host
from ..roles import PHASES, backends as backends_role
from .session import open_run, ssh_counts

MARK = factlib.MARK


def roles_of(host) -> list:
    return [role for group, role in PHASES if group in host.groups]


def script(host, request) -> str:
    """Status lines, then the facts script (which ends the exec)."""
    lines = ["export LC_ALL=C", f"echo '{MARK}status-last-deploy'; tail -n 1 {audit.LOG} 2>/dev/null"]
    if "proxies" in host.groups:
        lines.append(f"echo '{MARK}status-balancer'; {bm.read_command()}; echo")
    for app in host.apps:
        url = f"http://{syntax.host_port(host.private_address, app['port'])}/"
        lines.append(f"echo {shlex.quote(MARK + 'status-app ' + app['name'])}; "
                     f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 2 {shlex.quote(url)}; echo")
    return "\n".join(lines) + "\n" + factlib.script(request)


def interpret(host, text: str, inventory, options) -> dict:
    """Pure: the exec's output -> this host's status record."""
    sections = factlib.split_sections(text)
    facts = factlib.parse(text)
    record = {"host": host.name, "groups": [g for g in ("proxies", "backends") if g in host.groups],
              "last_deploy": audit.parse_last(sections.get("status-last-deploy", []))}
    pending = []
    for role in roles_of(host):
        _, changes, handlers = plan_host(role, host, inventory, options, facts)
        pending += [c.label for c in changes if c.changed] + [h.label for h in handlers]
    record["would_change"] = pending
    if "proxies" in host.groups:
        page = "\n".join(sections.get("status-balancer", []))
        try:
            record["members"] = [m.as_dict() for m in bm.parse(page)]
        except bm.ManagerError:
            record["members"] = []
            record["balancer_error"] = "balancer-manager did not answer on the loopback"
    apps = []
    for app in host.apps:
        unit = facts.unit(backends_role.unit_name(app))
        code = "".join(sections.get(f"status-app {app['name']}", [])).strip()
        apps.append({"app": app["name"], "unit": backends_role.unit_name(app),
                     "state": unit.get("ActiveState", "unknown"), "since": unit.get("ActiveEnterTimestamp", ""),
                     "address": syntax.host_port(host.private_address, app["port"]), "http": code,
                     "answers": code.isdigit() and code.startswith(("2", "3"))})
    if host.apps:
        record["apps"] = apps
    return record


def collect(inventory_path: str, limit: str | None = None, accept_new_host_keys=False,
            prompt_for_sudo_password=False, forks=20) -> dict:
    inventory, options, connections = open_run(inventory_path, accept_new_host_keys, prompt_for_sudo_password, forks)
    hosts = [h for h in inventory.select(limit) if roles_of(h)]
    options.tls = tls.prepare(inventory, [h for h in hosts if "proxies" in h.groups], save=False)

    def one(host):
        try:
            request = factlib.FactRequest()
            for role in roles_of(host):
                request = request.merge(fact_request(role, host, inventory, options))
            ran = connections.get(host).run_script(script(host, request), timeout=60)
            if ran.rc != 0:
                return {"host": host.name, "error": (ran.stderr or ran.stdout).strip()[-300:] or f"exit {ran.rc}"}
            return interpret(host, ran.stdout, inventory, options)
        except Exception as exc:        # one host's trouble never hides the others
            return {"host": host.name, "error": str(exc) or type(exc).__name__}

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(options.forks, len(hosts) or 1))) as pool:
            records = list(pool.map(one, hosts))
    finally:
        connections.close()
    return {"hosts": {r["host"]: r for r in records}, "ssh": ssh_counts(connections)}


def _deploy_text(last: dict | None) -> str:
    if not last:
        return "no deploy recorded"
    return (f"{last.get('time', '?')} by {last.get('user', '?')}@{last.get('control', '?')} "
            f"({last.get('inventory', '?')}): {last.get('changes', 0)} changes, {last.get('result', '?')}")


def _plan_text(record: dict) -> str:
    pending = record.get("would_change", [])
    return "up to date" if not pending else f"would change {len(pending)}: {', '.join(pending[:5])}" + \
        (", ..." if len(pending) > 5 else "")


def plain_lines(data: dict) -> list[str]:
    out = []
    for name, r in data["hosts"].items():
        if "error" in r:
            out.append(f"{name} | failed | {r['error']}")
            continue
        out.append(f"{name} | last deploy | {_deploy_text(r['last_deploy'])}")
        out.append(f"{name} | deploy | {_plan_text(r)}")
        if "balancer_error" in r:
            out.append(f"{name} | balancer | {r['balancer_error']}")
        for m in r.get("members", []):
            out.append(f"{name} | member | {m['balancer']} {m['route']} {m['address']} {m['state']} "
                       f"elected={m['elected']} busy={m['busy']} load={m['load']}")
        for a in r.get("apps", []):
            out.append(f"{name} | app | {a['app']} {a['state']} since {a['since'] or '-'}; "
                       f"{a['address']} {'answers ' + a['http'] if a['answers'] else 'does not answer (' + (a['http'] or 'no reply') + ')'}")
    return out


def print_rich(data: dict, stream) -> None:
    """The tables. Every cell is the hosts' text, escaped: a '[' in a balancer-manager page or an
    error prints as itself, never read as rich markup (it raised MarkupError)."""
    # lazy: rich costs ~28 ms of start-up, needed only on a terminal
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    def cells(*values):
        """Escaped text; a (text, style) pair is that text in that style."""
        return [f"[{v[1]}]{escape(str(v[0]))}[/]" if isinstance(v, tuple) else escape(str(v)) for v in values]
    console = Console(file=stream, highlight=False)
    hosts = Table(title="Hosts")
    for col in ("host", "groups", "last deploy", "deploy now"):
        hosts.add_column(col)
    members = Table(title="Balancer members")
    for col in ("proxy", "pool", "route", "address", "state", "elected", "busy", "load"):
        members.add_column(col)
    apps = Table(title="Apps")
    for col in ("host", "app", "service", "since", "address", "answers"):
        apps.add_column(col)
    color = {"Ok": "green", "Drn": "yellow", "Stby": "cyan"}
    for name, r in data["hosts"].items():
        if "error" in r:
            hosts.add_row(*cells(name, "", (r["error"], "red"), ""))
            continue
        hosts.add_row(*cells(name, ",".join(r["groups"]), _deploy_text(r["last_deploy"]), _plan_text(r)))
        for m in r.get("members", []):
            members.add_row(*cells(name, m["balancer"], m["route"], m["address"],
                                   (m["state"], color.get(m["state"], "red")), m["elected"], m["busy"], m["load"]))
        for a in r.get("apps", []):
            apps.add_row(*cells(name, a["app"], a["state"], a["since"] or "-", a["address"],
                                ("yes", "green") if a["answers"] else (f"no {a['http']}", "red")))
    for table in (hosts, members, apps):
        if table.row_count:
            console.print(table)


def main(inventory_path: str, limit=None, as_json=False, accept_new_host_keys=False,
         prompt_for_sudo_password=False, stream=None) -> int:
    stream = stream or sys.stdout
    data = collect(inventory_path, limit, accept_new_host_keys, prompt_for_sudo_password)
    if as_json:
        print(json.dumps(data, indent=2), file=stream)
    elif stream.isatty():
        print_rich(data, stream)
    else:
        for line in plain_lines(data):
            print(line, file=stream)
    return 2 if any("error" in r for r in data["hosts"].values()) else 0
