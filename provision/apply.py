"""Turn planned changes into one shell script per host, and read its output back. Pure.

The script runs the changed steps in order, each in a subshell with ``set -e``. Before a step
that notifies a handler, it records the handler on the host (under PENDING_DIR) so that a run
killed half-way still runs the handler next time. After the last step of a validation group
(Apache's configtest) it validates; a failure restores the group's previous files, runs no
handler and exits 2. Handlers run last, each clearing its record only once it succeeded.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from .facts import PENDING_DIR
from .resources import Change

STEP = "@@@ step "
DONE = "@@@ done "
VALIDATION_FAILED = 2


@dataclass
class Handler:
    name: str           # also its record's file name under PENDING_DIR
    label: str
    script: str


@dataclass
class StepOutcome:
    key: str
    rc: int | None      # None: not reached
    output: str


def handlers_to_run(changes: list[Change], pending: set[str], known: dict[str, Handler]) -> list[Handler]:
    """Handlers notified by a change or left pending by an earlier run, minus those a fresh
    start made unnecessary, in the order the role declared them."""
    wanted = set(pending) | {n for c in changes if c.changed for n in c.notify}
    satisfied = {n for c in changes if c.changed for n in c.satisfies}
    return [h for name, h in known.items() if name in wanted and name not in satisfied]


def build(changes: list[Change], handlers: list[Handler], validators: dict[str, str],
          pending_before: set[str], upload_dir: str) -> str:
    todo = [(i, c) for i, c in enumerate(changes) if c.changed]
    last_of_group = {}
    for i, c in todo:
        if c.validate:
            last_of_group[c.validate] = i
    notified = sorted({n for _, c in todo for n in c.notify})
    out = [
        "export LC_ALL=C DEBIAN_FRONTEND=noninteractive",
        f"export PROVISION_UPLOAD={shlex.quote(upload_dir)}",
        f"mkdir -p {PENDING_DIR}",
        "rollback() { :; }",
    ]
    rollbacks: dict[str, list[str]] = {}
    commits: dict[str, list[str]] = {}
    for i, c in todo:
        out.append(f"echo '{STEP}{i}'")
        for name in c.notify:
            out.append(f"touch {_record(name)}")
        out.append(f"( set -e\n{c.script}\n) 2>&1")
        out.append(f"rc=$?; echo '{DONE}{i}' $rc; [ $rc -eq 0 ] || exit 1")
        if c.validate:
            if c.rollback:
                rollbacks.setdefault(c.validate, []).insert(0, c.rollback)
            if c.commit:
                commits.setdefault(c.validate, []).append(c.commit)
        group = c.validate
        if group and last_of_group[group] == i:
            key = f"validate-{group}"
            undo = "\n".join(rollbacks.get(group, [])) or ":"
            # Records this run created for the group's handlers go too: nothing was applied.
            fresh = [n for n in notified if n not in pending_before]
            forget = f"rm -f {' '.join(_record(n) for n in fresh)}" if fresh else ":"
            out += [
                f"echo '{STEP}{key}'",
                f"( {validators[group]} ) 2>&1",
                f"rc=$?; echo '{DONE}{key}' $rc",
                f"if [ $rc -ne 0 ]; then\n{undo}\n{forget}\nexit {VALIDATION_FAILED}\nfi",
            ]
            out += commits.get(group, [])
    # A fresh start already loaded everything: its handler's record is done with.
    running = {h.name for h in handlers}
    satisfied = sorted({n for _, c in todo for n in c.satisfies} - running)
    if satisfied:
        out.append(f"rm -f {' '.join(_record(n) for n in satisfied)}")
    for h in handlers:
        key = f"handler-{h.name}"
        out += [
            f"echo '{STEP}{key}'",
            f"( set -e\n{h.script}\n) 2>&1",
            f"rc=$?; echo '{DONE}{key}' $rc; [ $rc -eq 0 ] || exit 1",
            f"rm -f {_record(h.name)}",
        ]
    out.append("exit 0")
    return "\n".join(out) + "\n"


def _record(handler: str) -> str:
    """The shell-quoted path of a handler's pending record."""
    return shlex.quote(f"{PENDING_DIR}/{handler}")


def parse(text: str) -> dict[str, StepOutcome]:
    """Step key -> outcome, for every step that started."""
    results: dict[str, StepOutcome] = {}
    current, buf = None, []
    for line in text.splitlines():
        if line.startswith(STEP):
            current, buf = line[len(STEP):].strip(), []
            results[current] = StepOutcome(current, None, "")
        elif line.startswith(DONE):
            m = re.match(r"^(\S+) (\d+)$", line[len(DONE):].strip())
            if m and m.group(1) in results:
                results[m.group(1)] = StepOutcome(m.group(1), int(m.group(2)), "\n".join(buf).strip())
            current, buf = None, []
        elif current is not None:
            buf.append(line)
    for key, res in results.items():
        if res.rc is None and key == current:
            results[key] = StepOutcome(key, None, "\n".join(buf).strip())
    return results
