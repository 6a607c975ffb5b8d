"""The audit trail: every apply appends one JSON line to /var/log/provision/deploys.log on the
host (time, control machine, local user, inventory, changed resources' labels, result).

The line is written by the apply script itself (so it costs no exec of its own); a host with
nothing to change runs no apply script, and so writes no line. The log is
root-only (directory 0700, file 0600) and rotated by a logrotate file the deploy installs. No
secret is ever part of a line: only names, labels and counts.
"""
from __future__ import annotations

import datetime
import getpass
import json
import shlex
import socket
from pathlib import Path

LOG_DIR = "/var/log/provision"
LOG = f"{LOG_DIR}/deploys.log"
LOGROTATE = "/etc/logrotate.d/provision"
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


def fields(inventory_path, changed: list[str], now: datetime.datetime | None = None) -> dict:
    """Everything a line holds except its result, which only the host knows at the end."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return {"time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "control": socket.gethostname(),
            "user": getpass.getuser(), "inventory": Path(str(inventory_path)).name,
            "changes": len(changed), "changed": list(changed)}


def function(entry: dict, log: str = LOG) -> str:
    """Shell function ``provision_audit RC``: appends the line with result ok, changed or failed."""
    prefix = json.dumps(entry)[:-1] + ', "result": "'
    good = "changed" if entry["changes"] else "ok"
    folder = log.rsplit("/", 1)[0]
    return (
        "provision_audit() {\n"
        f"  if [ \"$1\" -eq 0 ]; then r={good}; else r=failed; fi\n"
        f"  ( umask 077; mkdir -p {shlex.quote(folder)} && chmod 700 {shlex.quote(folder)} &&\n"
        f"    printf '%s%s\", \"rc\": %s}}\\n' {shlex.quote(prefix)} \"$r\" \"$1\" >> {shlex.quote(log)} &&\n"
        f"    chmod 600 {shlex.quote(log)} ) || echo 'provision: could not append to {log}' >&2\n"
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
        except ValueError:
            return None
        return found if isinstance(found, dict) else None
    return None


def resources() -> list:
    """What every role installs for the trail: its folder and the logrotate file."""
    from ..resources import Directory, File
    return [Directory(LOG_DIR, mode="700"), Directory("/etc/logrotate.d"),
            File(LOGROTATE, LOGROTATE_TEXT, kind_label="logrotate")]
