"""tls: acme after the proxies converged, in a deploy and in `invoke tls.renew`.

The control route: when the kept certificate is due (tls.acme_due: none yet, names changed, within
acme_renew_window), this machine orders one (provision.acme_client), puts the HTTP-01 answers in
the proxy's challenge folder over SSH (its :80 vhosts serve it since the converge), keeps what the
CA issued in the inventory's store, and converges the proxy again: the new pair is installed as
with tls: provided, with one reload. A refused order leaves the proxy as it was (serving its
previous certificate, or plain HTTP before the first) and fails the host in one line.

The mod_md route: Apache orders and renews by itself. After a converge that changed the proxy, or
while its certificate does not yet cover every name, this waits (polling, bounded) until mod_md
serves one that does, or reports mod_md's error from its job record.
"""
from __future__ import annotations

import datetime
import json
import re
import shlex
import time

from . import acme_client, facts as factlib, tls
from .engine import HostResult, StepResult, converge_host
from .roles import proxy

MD_WAIT = 90.0          # s: mod_md's first attempt after a reload fits in this, or we say what it said
POLL = 0.5              # s between reads of mod_md's store
ANSWER_RE = re.compile(r"[A-Za-z0-9_.-]+")      # base64url tokens and key authorizations (RFC 8555, 8.1)


def label(host) -> str:
    return f"acme certificate {tls.acme_names(host)[0]}"


def settle(hosts, seen: dict, inventory, options, connections, reporter, changed: set[str],
           started: float) -> dict[str, HostResult]:
    """Every acme proxy among `hosts` after its converge: the control route's order when due, the
    mod_md route's wait. `seen`: each host's facts from before the converge; `changed`: the hosts
    the converge changed; `started`: when the run began (time.time()), so that an error mod_md
    recorded before it is not taken for this run's."""
    results = {}
    now = datetime.datetime.now(datetime.timezone.utc)
    for host in hosts:
        platform = seen[host.name].platform
        route = proxy.acme_route(host, platform)
        result = HostResult(host.name)
        try:
            if route == "control":
                order(host, inventory, options, connections, reporter, result)
            elif route == "mod_md":
                served = seen[host.name].certificates.get(proxy.md_paths(host, platform)[0])
                if host.name in changed or tls.served_problem(host, served, now) is not None:
                    wait_for_md(host, platform, connections, reporter, result, started)
        except Exception as exc:        # one host's trouble (a lost connection) never stops the others
            result.error = f"{type(exc).__name__}: {exc}"
            reporter.failed(host.name, "acme", result.error)
        if result.steps or result.error:
            results[host.name] = result
    return results


def would_order(hosts, seen: dict, inventory, reporter, now=None) -> dict[str, HostResult]:
    """--check: the control route's orders a deploy would place, and why."""
    results = {}
    for host in hosts:
        control = proxy.acme_route(host, seen[host.name].platform) == "control"
        why = tls.acme_due(inventory, host, now) if control else None
        if why is not None:
            step = StepResult(label(host), "changed", f"would order one from {tls.acme_directory(host)} ({why})")
            results[host.name] = HostResult(host.name, [step])
            reporter.step(host.name, step)
    return results


# -- the control route ---------------------------------------------------------------------------

def order(host, inventory, options, connections, reporter, result: HostResult, now=None, role=proxy) -> bool:
    """Order a certificate if the kept one is due, then converge `role` (the proxy role, or only its
    certificate files) to install it. False when the order failed."""
    why = tls.acme_due(inventory, host, now)
    if why is None:
        return True
    names = tls.acme_names(host)
    directory = tls.acme_directory(host)
    ca_bundle = tls.directory_ca(host, inventory)
    conn = connections.get(host)
    key_pem = tls.new_key_pem()
    try:
        chain = acme_client.obtain(directory, tls.account_key(inventory, directory), host.vars["acme_email"], names,
                                   key_pem, publish=lambda answers: conn.run_script(publish_script(answers), timeout=60),
                                   withdraw=lambda answers: conn.run_script(withdraw_script(answers), timeout=60),
                                   ca_bundle=str(ca_bundle) if ca_bundle else None)
    except acme_client.AcmeError as exc:
        step = StepResult(label(host), "failed", f"{exc.name}: {exc.text}")
        result.steps.append(step)
        reporter.failed(host.name, "acme", f"{exc.name}: {exc.text}")
        return False
    made = tls.save_acme(inventory, host, chain, key_pem)
    step = StepResult(label(host), "changed", f"issued by {directory} ({why}): serial {made.serial:x}")
    result.steps.append(step)
    reporter.step(host.name, step)
    options.tls[host.name] = made
    converge_host(role, host, inventory, options, conn, reporter, result)
    return not result.failed


def _challenge_path(token: str) -> str:
    return f"{proxy.ACME_CHALLENGES}/{token}"


def publish_script(answers) -> str:
    """Shell that writes each HTTP-01 answer where the :80 vhosts serve it (0644: the CA reads it)."""
    lines = ["set -e", "umask 022", f"mkdir -p {proxy.ACME_CHALLENGES}"]
    for a in answers:
        if not (ANSWER_RE.fullmatch(a.token) and ANSWER_RE.fullmatch(a.content)):
            raise acme_client.AcmeError(a.name, "the CA sent a token that is not base64url")
        path = shlex.quote(_challenge_path(a.token))
        lines += [f"printf '%s' {shlex.quote(a.content)} > {path}.tmp", f"mv -f {path}.tmp {path}"]
    return "\n".join(lines) + "\n"


def withdraw_script(answers) -> str:
    return "rm -f " + " ".join(shlex.quote(_challenge_path(a.token)) for a in answers
                               if ANSWER_RE.fullmatch(a.token)) + "\n"


# -- the mod_md route -------------------------------------------------------------------------------

CA_ANSWER = "Exact response was: "     # mod_md's error-log line with the CA's answer to a failed authorization


def md_error(job_text: str, answer_line: str, since: float) -> tuple[str, str] | None:
    """mod_md's last error, if it came after `since` (time.time() on the host's clock): (the name
    it failed for, the CA's own words). Its job record (staging/<domain>/job.json) says that and when
    it failed, in its own words; the CA's answer is in the error log ("Exact response was: {...}")."""
    try:
        job = json.loads(job_text)
    except ValueError:
        return None
    last = job.get("last") or {}
    if not job.get("errors") or not (last.get("detail") or last.get("problem")):
        return None
    try:
        ran = datetime.datetime.strptime(job.get("last-run"), "%a, %d %b %Y %H:%M:%S GMT").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        ran = since
    if ran < since:
        return None
    name, problem = job.get("name", ""), (last.get("problem") or "").rsplit(":", 1)[-1]
    text = " ".join(str(last.get("detail") or "").split())
    try:
        authz = json.loads(_unescape_log(answer_line.split(CA_ANSWER, 1)[1]))
        failed = next(c["error"] for c in authz.get("challenges", []) if c.get("error"))
        name, problem, text = authz["identifier"]["value"], failed["type"].rsplit(":", 1)[-1], failed["detail"]
    except (IndexError, KeyError, StopIteration, TypeError, ValueError):
        pass
    return name, f"{' '.join(text.split())} ({problem})" if problem and text else text or problem


def _unescape_log(text: str) -> str:
    """Undo httpd's escaping of error log items (ap_escape_errorlog_item: a backslash doubled,
    control characters as \\xhh)."""
    return re.sub(r"\\(\\|x[0-9a-fA-F]{2})", lambda m: "\\" if m.group(1) == "\\" else chr(int(m.group(1)[1:], 16)),
                  text)


def md_read_script(host, platform) -> str:
    """The host's clock, mod_md's certificate (its CERTIFICATE blocks only), job record, and the
    error log's last answer of the CA."""
    cert, job = proxy.md_paths(host, platform)
    return "\n".join([f"echo '{factlib.MARK}clock'; date -u +%s", *factlib.certificate_lines([cert]),
                      f"echo '{factlib.MARK}job'; cat {shlex.quote(job)} 2>/dev/null; echo",
                      f"echo '{factlib.MARK}answer'; tail -n 500 {shlex.quote(platform.error_log)} 2>/dev/null "
                      f"| grep -F {shlex.quote(CA_ANSWER)} | tail -n 1"]) + "\n"


def md_state(host, platform, connections, started: float):
    """One read of mod_md's store: None when the certificate it serves does, else (why not,
    (name, mod_md's error) since the run started, or None)."""
    ran = connections.get(host).run_script(md_read_script(host, platform), timeout=30)
    sections = factlib.split_sections(ran.stdout)
    clock = "".join(sections.get("clock", [])).strip()
    skew = (int(clock) - time.time()) if clock.isdigit() else 0.0
    pem = factlib.parse_certificates(sections).get(proxy.md_paths(host, platform)[0])
    why = tls.served_problem(host, pem, datetime.datetime.now(datetime.timezone.utc))
    if why is None:
        return None
    return why, md_error("\n".join(sections.get("job", [])), "".join(sections.get("answer", [])),
                         started + skew - 5)


def wait_for_md(host, platform, connections, reporter, result: HostResult, started: float,
                timeout: float = MD_WAIT) -> bool:
    """Poll mod_md's store until it serves a certificate that does, it records an error, or timeout."""
    began = time.monotonic()
    name = tls.acme_names(host)[0]
    while True:
        state = md_state(host, platform, connections, started)
        if state is None:
            step = StepResult(label(host), "ok", f"mod_md serves one for every name "
                                                  f"(waited {time.monotonic() - began:.1f} s)")
            result.steps.append(step)
            reporter.step(host.name, step)
            return True
        why, error = state
        if error or time.monotonic() - began > timeout:
            failed, text = error or (name, f"{why} after {timeout:.0f} s (mod_md keeps trying: its job.json and "
                                           "the error log say more)")
            result.steps.append(StepResult(label(host), "failed", f"{failed}: {text}"))
            reporter.failed(host.name, "acme", f"{failed}: {text}")
            return False
        time.sleep(POLL)
