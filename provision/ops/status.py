"""`provision status`: what every host is doing now, in one exec per host, all hosts in parallel.

The exec is the deploy's own facts script with a few read-only lines in front: balancer-manager's
page (proxies), whether each app answers on its address (backends), and the last line of the
audit trail. The facts then go through the same plan as ``deploy --check``, so "would a deploy
change anything" costs nothing more.
"""
from __future__ import annotations

import datetime
import shlex
import sys

from cryptography import x509
from cryptography.x509.oid import NameOID

from .. import audit, facts as factlib, report, syntax, tls
from ..balancer import manager as bm
from ..balancer.drain import site_names
from ..engine import fact_request, plan_host
from ..inventory.apps import is_code_app, setting
from ..roles import PHASES, backends as backends_role
from ..roles import proxy as proxy_role
from ..transport import Unreachable
from .session import each_host, interrupted_recap, open_run, ssh_counts

MARK = factlib.MARK


def roles_of(host) -> list:
    return [role for group, role in PHASES if group in host.groups]


def script(host, request) -> str:
    """Status lines, then the facts script (which ends the exec)."""
    lines = ["export LC_ALL=C", f"echo '{MARK}status-last-deploy'; tail -n 1 {audit.LOG} 2>/dev/null"]
    if "proxies" in host.groups:
        lines.append(f"echo '{MARK}status-balancer'; {bm.read_command(site_names(host))}; echo")
    for app in host.apps:
        url = f"http://{syntax.host_port(host.private_address, app['port'])}{setting(app, 'health')}"
        lines.append(f"echo {shlex.quote(MARK + 'status-app ' + app['name'])}; "
                     f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 2 {shlex.quote(url)}; echo")
        if is_code_app(app):
            home = shlex.quote(backends_role.app_home(app))
            lines.append(f"echo {shlex.quote(MARK + 'status-release ' + app['name'])}; "
                         f"readlink {home}/current; ls -1 {home}/releases 2>/dev/null | sed 's/^/kept /'")
    return "\n".join(lines) + "\n" + factlib.script(request)


def certificate_files(host) -> set[str]:
    """Where each platform's proxy keeps the certificate it serves: ours, or mod_md's."""
    found = set()
    for platform in factlib.every_platform():
        found.add(proxy_role.tls_paths(platform)[0])
        if proxy_role.acme_route(host, platform) == "mod_md":
            found.add(proxy_role.md_paths(host, platform)[0])
    return found


def served_certificate(host, facts, now=None) -> dict:
    """The certificate the proxy serves, from its file: issuer, names, days left (pure)."""
    platform = facts.platform
    path = proxy_role.md_paths(host, platform)[0] if proxy_role.acme_route(host, platform) == "mod_md" \
        else proxy_role.tls_paths(platform)[0]
    pem = facts.certificates.get(path)
    if not pem:
        return {"file": path, "error": "no certificate there yet"}
    cert = x509.load_pem_x509_certificates(pem.encode())[0]
    now = now or datetime.datetime.now(datetime.timezone.utc)
    issuer = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    names = sorted(tls.certificate_names(cert)) + [str(a) for a in _addresses(cert)]
    return {"file": path, "issuer": issuer[0].value if issuer else cert.issuer.rfc4514_string(), "names": names,
            "serial": f"{cert.serial_number:x}", "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "days_left": tls.days_left(pem, now)}


def _addresses(cert) -> list:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.IPAddress)
    except x509.ExtensionNotFound:
        return []


def interpret(host, text: str, inventory, options) -> dict:
    """Pure: the exec's output -> this host's status record."""
    sections = factlib.split_sections(text)
    facts = factlib.parse(text)
    record = {"host": host.name, "status": "ok", "groups": [g for g in ("proxies", "backends") if g in host.groups],
              "last_deploy": audit.parse_last(sections.get("status-last-deploy", []))}
    pending = []
    for role in roles_of(host):
        _, changes, handlers = plan_host(role, host, inventory, options, facts)
        pending += [c.label for c in changes if c.changed] + [h.label for h in handlers]
    record["would_change"] = pending
    if "proxies" in host.groups and tls.mode(host) != "off":
        record["certificate"] = served_certificate(host, facts)
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
        if is_code_app(app):
            apps[-1].update(release_of(sections.get(f"status-release {app['name']}", [])))
    if host.apps:
        record["apps"] = apps
    return record


def release_of(lines: list[str]) -> dict:
    """An app's current release ID and how many releases its host keeps (readlink, then "kept ID" lines)."""
    current = next((ln.strip().rpartition("/")[2] for ln in lines if ln.strip() and not ln.startswith("kept ")), "")
    return {"release": current or None, "kept": sum(ln.startswith("kept ") for ln in lines)}


def collect(sources, limit: str | None = None, accept_new_host_keys=False, sudo_password=None, forks=20,
            extra_vars=(), trace=None, last_words=lambda hosts, done: None) -> dict:
    inventory, options, connections = open_run(sources, extra_vars, accept_new_host_keys, sudo_password, forks,
                                               trace)
    hosts = [h for h in inventory.select(limit) if roles_of(h)]
    options.tls = tls.prepare(inventory, [h for h in hosts if "proxies" in h.groups], save=False)

    def one(host):
        try:
            request = factlib.FactRequest()
            for role in roles_of(host):
                request = request.merge(fact_request(role, host, inventory, options))
            if "proxies" in host.groups and tls.mode(host) != "off":
                request = request.merge(factlib.FactRequest(certificates=certificate_files(host)))
            ran = connections.get(host).run_script(script(host, request), timeout=60)
            if ran.rc != 0:
                return failed(host.name, (ran.stderr or ran.stdout).strip()[-300:] or f"exit {ran.rc}")
            return interpret(host, ran.stdout, inventory, options)
        except Unreachable as exc:
            return failed(host.name, str(exc), "unreachable")
        except Exception as exc:        # one host's trouble never hides the others
            return failed(host.name, str(exc) or type(exc).__name__)

    try:
        records = each_host(hosts, one, options.forks, lambda done: last_words(hosts, done))
    finally:
        connections.close()
    return {"hosts": {r["host"]: r for r in records}, "ssh": ssh_counts(connections)}


def failed(name: str, error: str, status: str = "failed") -> dict:
    return {"host": name, "status": status, "error": error}


def exit_code(data: dict) -> int:
    words = {r["status"] for r in data["hosts"].values()}
    return report.exit_for("failed" in words, "unreachable" in words)


def _deploy_text(last: dict | None) -> str:
    if not last:
        return "no deploy recorded"
    return (f"{last.get('time', '?')} by {last.get('user', '?')}@{last.get('control', '?')} "
            f"({last.get('inventory', '?')}): {last.get('changes', 0)} changes, {last.get('result', '?')}")


def _plan_text(record: dict) -> str:
    pending = record.get("would_change", [])
    return "up to date" if not pending else f"would change {len(pending)}: {', '.join(pending[:5])}" + \
        (", ..." if len(pending) > 5 else "")


def _certificate_text(c: dict) -> str:
    if "error" in c:
        return f"{c['file']}: {c['error']}"
    return f"{', '.join(c['names'])} issued by {c['issuer']}, {c['days_left']} days left (until {c['not_after']})"


def plain_lines(data: dict) -> list[str]:
    out = []
    for name, r in data["hosts"].items():
        if "error" in r:
            out.append(f"{name} | {r.get('status', 'failed')} | {r['error']}")
            continue
        out.append(f"{name} | last deploy | {_deploy_text(r['last_deploy'])}")
        out.append(f"{name} | deploy | {_plan_text(r)}")
        if "certificate" in r:
            out.append(f"{name} | certificate | {_certificate_text(r['certificate'])}")
        if "balancer_error" in r:
            out.append(f"{name} | balancer | {r['balancer_error']}")
        for m in r.get("members", []):
            out.append(f"{name} | member | {m['balancer']} {m['route']} {m['address']} {m['state']} "
                       f"elected={m['elected']} busy={m['busy']} load={m['load']}")
        for a in r.get("apps", []):
            out.append(f"{name} | app | {a['app']} {a['state']} since {a['since'] or '-'}; "
                       f"{a['address']} {'answers ' + a['http'] if a['answers'] else 'does not answer (' + (a['http'] or 'no reply') + ')'}"
                       + (f"; release {a['release'] or 'none'} ({a['kept']} kept)" if "kept" in a else ""))
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
    for col in ("host", "app", "service", "since", "address", "answers", "release"):
        apps.add_column(col)
    certificates = Table(title="Certificates")
    for col in ("proxy", "names", "issuer", "days left", "until"):
        certificates.add_column(col)
    color = {"Ok": "green", "Drn": "yellow", "Stby": "cyan"}
    for name, r in data["hosts"].items():
        if "error" in r:
            hosts.add_row(*cells(name, "", (f"{r.get('status', 'failed')}: {r['error']}", "red"), ""))
            continue
        hosts.add_row(*cells(name, ",".join(r["groups"]), _deploy_text(r["last_deploy"]), _plan_text(r)))
        c = r.get("certificate")
        if c and "error" in c:
            certificates.add_row(*cells(name, (c["error"], "red"), "", "", ""))
        elif c:
            certificates.add_row(*cells(name, ", ".join(c["names"]), c["issuer"],
                                        (c["days_left"], "green" if c["days_left"] > 14 else "red"), c["not_after"]))
        for m in r.get("members", []):
            members.add_row(*cells(name, m["balancer"], m["route"], m["address"],
                                   (m["state"], color.get(m["state"], "red")), m["elected"], m["busy"], m["load"]))
        for a in r.get("apps", []):
            apps.add_row(*cells(name, a["app"], a["state"], a["since"] or "-", a["address"],
                                ("yes", "green") if a["answers"] else (f"no {a['http']}", "red"),
                                f"{a['release'] or 'none'} ({a['kept']} kept)" if "kept" in a else "-"))
    for table in (hosts, certificates, members, apps):
        if table.row_count:
            console.print(table)


def main(sources, limit=None, json_path=None, accept_new_host_keys=False, sudo_password=None, forks=20,
         extra_vars=(), trace=None, stream=None) -> int:
    """The status of every chosen host on the screen; ``json_path`` also writes it as JSON
    ("-": the JSON on stdout instead of the screen's lines)."""
    stream = stream or sys.stdout

    def last_words(hosts, done):
        for line in plain_lines({"hosts": done}):
            print(line, file=stream)
        interrupted_recap(hosts, done, lambda r: r["status"], stream)
    data = collect(sources, limit, accept_new_host_keys, sudo_password, forks, extra_vars, trace, last_words)
    code = exit_code(data)
    document = report.document("status", data["hosts"], code, {"ssh": data["ssh"]})
    if json_path == "-":
        print(document, file=stream)
        return code
    if json_path:
        report.write_json(json_path, document)
    if stream.isatty():
        print_rich(data, stream)
    else:
        for line in plain_lines(data):
            print(line, file=stream)
    return code
