"""The audit trail: every deploy leaves one JSON line in /var/log/provision/deploys.log on each
host (time, control machine, local user, inventory, changed resources' labels, result).

No line costs an exec of its own. The deploy's facts exec appends the run's line first, with
result "unchanged" and no changes: on a host with nothing to change no other exec follows, and
that line is the truth (nothing was changed). When an apply follows, it replaces that line (same
"run" id) with its own: ok, changed or failed, with the labels. A control machine that dies
between the two leaves "unchanged", which is also true: nothing was applied. ``--check`` and
``status`` write nothing. The log is root-only (directory 0700, file 0600) and rotated by a
logrotate file the deploy installs. No secret is ever part of a line: only names, labels and counts.
"""
from __future__ import annotations

import datetime
import getpass
import json
import shlex
import os
import socket
from pathlib import Path

from .resources import Directory, File

LOG_DIR = "/var/log/provision"
LOG = f"{LOG_DIR}/deploys.log"
LOGROTATE = "/etc/logrotate.d/provision"
UNCHANGED = "unchanged"         # the facts exec's result: nothing was applied
LOGROTATE_TEXT = f"""# Managed by provision: rotates the deploy audit trail.
{LOG} {{
    monthly
    rotate 12
    compress
    missingok
    notifempty
    create 0600 root root
}}
"""


def run_id() -> str:
    """Names one deploy's line on every host, so that its apply can replace its facts line."""
    return os.urandom(8).hex()


def fields(inventory_path, changed: list[str], now: datetime.datetime | None = None, run: str = "") -> dict:
    """Everything a line holds except its result, which only the host knows at the end."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return {"time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "control": socket.gethostname(),
            "user": getpass.getuser(), "inventory": Path(str(inventory_path)).name,
            "changes": len(changed), "changed": list(changed), "run": run}


def _folder(log: str) -> str:
    folder = shlex.quote(log.rsplit("/", 1)[0])
    return f"umask 077; mkdir -p {folder} && chmod 700 {folder}"


def facts_line(entry: dict, log: str = LOG) -> str:
    """Shell for the facts exec of a deploy: appends the run's line, result "unchanged" (an apply,
    if one follows, replaces it). One printf is one append write: facts run under the shared host
    lock, side by side."""
    line = json.dumps({**entry, "changes": 0, "changed": [], "result": UNCHANGED, "rc": 0})
    return (f"( {_folder(log)} && printf '%s\\n' {shlex.quote(line)} >> {shlex.quote(log)} && "
            f"chmod 600 {shlex.quote(log)} ) || echo 'provision: could not append to {log}' >&2\n")


def function(entry: dict, log: str = LOG) -> str:
    """Shell function ``provision_audit RC``: the log without this run's facts line, plus the
    apply's line with result ok, changed or failed (temp file, then rename; the apply holds the
    host lock exclusive, so no facts exec appends meanwhile)."""
    prefix = json.dumps(entry)[:-1] + ', "result": "'
    good = "changed" if entry["changes"] else "ok"
    q = shlex.quote(log)
    new = shlex.quote(log + ".new")
    # Only the facts line goes: a host in two groups runs one apply per role, and keeps both lines.
    facts = json.dumps({"run": entry.get("run"), "result": UNCHANGED})[1:-1]
    keep = f"grep -v -F {shlex.quote(facts)}" if entry.get("run") else "cat"
    return (
        "provision_audit() {\n"
        f"  if [ \"$1\" -eq 0 ]; then r={good}; else r=failed; fi\n"
        f"  ( {_folder(log)} &&\n"
        f"    {{ if [ -f {q} ]; then {keep} {q}; fi\n"
        f"      printf '%s%s\", \"rc\": %s}}\\n' {shlex.quote(prefix)} \"$r\" \"$1\"; }} > {new} &&\n"
        f"    chmod 600 {new} && mv -f {new} {q} ) || echo 'provision: could not write {log}' >&2\n"
        "}\n")


def wrap_apply(script: str, entry: dict, log: str = LOG) -> str:
    """The apply steps in a subshell, then their line, whatever way they exit (the steps' own
    EXIT trap stays theirs: it runs when the subshell ends)."""
    return function(entry, log) + "(\n" + script + ")\nrc=$?\nprovision_audit \"$rc\"\nexit \"$rc\"\n"


def parse_last(lines: list[str]) -> dict | None:
    """The last JSON line of the log (``tail -n 1``), or None if there is none or it is torn."""
    for line in reversed([ln for ln in lines if ln.strip()]):
        try:
            found = json.loads(line)
        except (ValueError, RecursionError):        # the host's text: torn, or hostile
            return None
        return found if isinstance(found, dict) else None
    return None


def resources() -> list:
    """What every role installs for the trail: its folder and the logrotate file."""
    return [Directory(LOG_DIR, mode="700"), Directory("/etc/logrotate.d"),
            File(LOGROTATE, LOGROTATE_TEXT, kind_label="logrotate")]
