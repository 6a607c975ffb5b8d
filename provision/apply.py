"""Turn planned changes into one shell script per host, and read its output back. Pure.

``build`` makes the steps: the changed steps in order, each in a subshell with ``set -e`` whose
temp file (``$tmp``) is removed by a trap if the step fails. Before a step that notifies a
handler, it records the handler on the host (under PENDING_DIR) so that a run killed half-way
still runs the handler next time. After the last step of a validation group (Apache's
configtest) it validates; a failure restores the group's previous files, runs no handler and
exits 2. Handlers run last, each clearing its record only once it succeeded.

``guarded`` wraps the steps: take the host lock (HOST_LOCK, exclusive, bounded wait), check every
path the plan read is still as the facts saw it (else change nothing, exit 3), record the exit
status. ``launcher`` is what the one exec runs: it stores that script under RUN_DIR, starts it
detached from the SSH session (a dropped connection cannot kill it), streams its output back
with a heartbeat on stderr, and removes the record once streamed. A record left behind is an
orphan: the next run's facts report it.
"""
from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass

from .facts import PENDING_DIR, RUN_DIR, FileState
from .resources import Change

STEP = "@@@ step "
DONE = "@@@ done "
GATE = "gate"               # the key of build's first step, when it has one
VALIDATION_FAILED = 2
STALE = 3                   # a planned path changed since the facts: nothing was changed
LOCK_BUSY = 75              # EX_TEMPFAIL: another deploy held the host lock for LOCK_WAIT s

# The host lock lives in root's own folder (mode 700): in a world-writable one such as /run/lock,
# any local user could plant a link there (root would create or chmod its target) or hold the
# lock and stop every deploy. The docs name it: operators' scripts may take it too.
LOCK_DIR = "/run/provision"
HOST_LOCK = f"{LOCK_DIR}/host.lock"
LOCK_WAIT = 120             # s, the longest a run waits for the host lock
LOCK_POLL = 5               # s between "still waiting" lines (they double as a heartbeat)
LOCK_WAITING = "@@@ lock-wait"
HEARTBEAT = "@@@ alive"     # on stderr, every HEARTBEAT_EVERY s while an apply runs
HEARTBEAT_EVERY = 5
STALE_MARK = "@@@ stale "
EXIT_MARK = "@@@ exit "     # the launcher's last line before it waits for ACK
ACK = "ack"
ACK_WAIT = 45               # s
APPLY_EOF = "__PROVISION_APPLY__"
# RUN_DIR's parent, made 755 when the first apply creates it: apps' data folders live below it.
STATE_DIR = posixpath.dirname(RUN_DIR)
CHECK_FAILED = "check failed: "     # a step's line naming the check that failed: the step's reason


@dataclass
class Handler:
    """A command run once at the end of an apply when a step notified it (Apache's reload)."""
    name: str           # also its record's file name under PENDING_DIR
    label: str
    script: str


@dataclass
class StepOutcome:
    """How one step of an apply script ended, read back from its output."""
    key: str
    rc: int | None      # None: not reached
    output: str
    label: str = ""


def handlers_to_run(changes: list[Change], pending: set[str], known: dict[str, Handler]) -> list[Handler]:
    """Handlers notified by a change or left pending by an earlier run, minus those a fresh
    start made unnecessary, in the order the role declared them."""
    wanted = set(pending) | {n for c in changes if c.changed for n in c.notify}
    satisfied = {n for c in changes if c.changed for n in c.satisfies}
    return [h for name, h in known.items() if name in wanted and name not in satisfied]


def build(changes: list[Change], handlers: list[Handler], validators: dict[str, str],
          pending_before: set[str], upload_dir: str, gate: tuple[str, str] | None = None,
          then: str = "") -> str:
    """``gate``: (label, script) run first, as step GATE: if it fails, nothing is changed.
    ``then``: shell run after the last step when every step succeeded (before the handlers)."""
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
    ]
    if gate is not None:
        out += [_start(GATE, gate[0]), f"( set -e\n{gate[1]}\n) 2>&1",
                f"rc=$?; echo '{DONE}{GATE}' $rc; [ $rc -eq 0 ] || exit 1"]
    rollbacks: dict[str, list[str]] = {}
    commits: dict[str, list[str]] = {}
    for i, c in todo:
        out.append(_start(i, c.label))
        for name in c.notify:
            out.append(f"touch {_record(name)}")
        out.append(f"( set -e\n{CLEAN_TMP}\n{c.script}\n) 2>&1")
        # A failed step in a validation group undoes the group's steps done so far (a full disk
        # half-way must not leave a mixed config for the next reload).
        done_in_group = rollbacks.get(c.validate, []) if c.validate else []
        undo_so_far = "".join(f"{r}\n" for r in done_in_group)
        out.append(f"rc=$?; echo '{DONE}{i}' $rc; [ $rc -eq 0 ] || {{\n{undo_so_far}exit 1\n}}")
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
                _start(key, f"configtest ({group})"),
                f"( {validators[group]} ) 2>&1",
                f"rc=$?; echo '{DONE}{key}' $rc",
                f"if [ $rc -ne 0 ]; then\n{undo}\n{forget}\nexit {VALIDATION_FAILED}\nfi",
            ]
            out += commits.get(group, [])
    if then:
        out.append(then)
    # A fresh start already loaded everything: its handler's record is done with.
    running = {h.name for h in handlers}
    satisfied = sorted({n for _, c in todo for n in c.satisfies} - running)
    if satisfied:
        out.append(f"rm -f {' '.join(_record(n) for n in satisfied)}")
    for h in handlers:
        key = f"handler-{h.name}"
        out += [
            _start(key, h.label),
            f"( set -e\n{h.script}\n) 2>&1",
            f"rc=$?; echo '{DONE}{key}' $rc; [ $rc -eq 0 ] || exit 1",
            f"rm -f {_record(h.name)}",
        ]
    out.append("exit 0")
    return "\n".join(out) + "\n"


def _record(handler: str) -> str:
    """The shell-quoted path of a handler's pending record."""
    return shlex.quote(f"{PENDING_DIR}/{handler}")


# A step's temp file is named $tmp (resources.File); any failure removes it.
CLEAN_TMP = "tmp=; trap '[ -z \"$tmp\" ] || rm -f \"$tmp\"' EXIT"


def _start(key, label: str) -> str:
    return f"echo {shlex.quote(f'{STEP}{key} {label}')}"


def planned_steps(script: str) -> list[tuple[str, str]]:
    """(key, label) of every step a built script announces, in order (for progress: step k/n)."""
    found = []
    for line in script.splitlines():
        if line.startswith("echo ") and STEP in line:
            words = shlex.split(line)
            if len(words) == 2 and words[1].startswith(STEP):
                key, _, label = words[1][len(STEP):].partition(" ")
                found.append((key, label))
    return found


def parse(text: str) -> dict[str, StepOutcome]:
    """Step key -> outcome, for every step that started."""
    results: dict[str, StepOutcome] = {}
    current, buf = None, []
    for line in text.splitlines():
        if line.startswith(STEP):
            current, _, label = line[len(STEP):].strip().partition(" ")
            buf = []
            results[current] = StepOutcome(current, None, "", label)
        elif line.startswith(DONE):
            m = re.match(r"^(\S+) (\d+)$", line[len(DONE):].strip())
            if m and m.group(1) in results:
                key = m.group(1)
                results[key] = StepOutcome(key, int(m.group(2)), "\n".join(buf).strip(), results[key].label)
            current, buf = None, []
        elif current is not None and not line.startswith("@@@ "):
            buf.append(line)
    for key, res in results.items():
        if res.rc is None and key == current:
            results[key] = StepOutcome(key, None, "\n".join(buf).strip(), res.label)
    return results


def summary(outcomes: dict[str, StepOutcome]) -> str:
    """How far a run got, from its step lines: "5 steps done", plus the step it stopped in."""
    done = sum(o.rc == 0 for o in outcomes.values())
    stopped = [o for o in outcomes.values() if o.rc != 0]
    text = f"{done} step{'s' if done != 1 else ''} done"
    if stopped:
        o = stopped[-1]
        text += f", stopped in {o.label or o.key!r} ({'exit ' + str(o.rc) if o.rc is not None else 'unfinished'})"
    return text


# -- the host lock, the precondition, and the detached run ------------------------------------------

LOCK_REFUSED = "refusing the host lock"


def open_lock(fd: int = 9) -> str:
    """Open HOST_LOCK on ``fd``. LOCK_DIR is made root's, mode 700, if missing; a lock folder that
    is a link, not root's or not mode 700, or a lock path that is a link or not a root-owned file,
    is refused (one line on stderr, exit 1). Nothing is chmod-ed or chown-ed: a path planted by
    someone else makes root change nothing."""
    d, f = LOCK_DIR, HOST_LOCK
    return "\n".join([
        f"( umask 077; mkdir {d} ) 2>/dev/null",
        f"if [ -L {d} ] || [ ! -d {d} ] || [ \"$(stat -c %u:%a {d})\" != 0:700 ]; then",
        f"  echo \"{LOCK_REFUSED}: {d} must be a folder of root's with mode 700, not a link"
        f" ($(stat -c '%F, owner %U, mode %a' {d} 2>&1))\" >&2; exit 1",
        f"elif [ -L {f} ] || {{ [ -e {f} ] && {{ [ ! -f {f} ] || [ \"$(stat -c %u {f})\" != 0 ]; }}; }}; then",
        f"  echo \"{LOCK_REFUSED}: {f} must be a file of root's, not a link"
        f" ($(stat -c '%F, owner %U' {f} 2>&1))\" >&2; exit 1",
        "fi",
        f"umask_was=$(umask); umask 077; exec {fd}>>{f} || {{ echo 'cannot open {f}' >&2; exit 1; }}; "
        "umask \"$umask_was\"",
    ]) + "\n"


def take_lock(shared: bool, fd: int = 9, wait: int = LOCK_WAIT, poll: int = LOCK_POLL) -> str:
    """Lock ``fd``; while another holder has it, say so on stderr every ``poll`` s, and give up
    (exit LOCK_BUSY) after ``wait`` s."""
    how = "-s" if shared else "-x"
    return "\n".join([
        f"if ! flock {how} -n {fd}; then",
        "  waited=0",
        f"  until echo '{LOCK_WAITING}' >&2; flock {how} -w {poll} {fd}; do",
        f"    waited=$((waited + {poll}))",
        f"    [ $waited -lt {wait} ] || {{ echo 'gave up waiting {wait} s for {HOST_LOCK}' >&2; exit {LOCK_BUSY}; }}",
        "  done",
        "fi",
    ]) + "\n"


def locked(script: str, shared: bool = False, wait: int = LOCK_WAIT, poll: int = LOCK_POLL) -> str:
    """``script`` run under the host lock (exclusive unless ``shared``), for scripts that run as is."""
    return open_lock() + take_lock(shared, wait=wait, poll=poll) + script


def expected_state(state: FileState) -> str:
    """A path's state as the precondition's shell function prints it."""
    if state.kind == "file":
        return f"file {state.sha256}"
    if state.kind == "link":
        return f"link {state.target}"
    return state.kind


PATH_STATE = """path_state() {
  if [ -L "$1" ]; then echo "link $(readlink "$1")"
  elif [ -d "$1" ]; then echo directory
  elif [ -f "$1" ]; then echo "file $(sha256sum < "$1" | cut -c1-64)"
  else echo absent; fi
}"""


def guarded(steps: str, expect: dict[str, FileState], forget_runs=(), wait: int = LOCK_WAIT,
            poll: int = LOCK_POLL) -> str:
    """The detached script: lock (on fd 9, opened by the launcher), precondition, then ``steps``.
    ``forget_runs``: orphan records the facts reported, removed once the check passed."""
    out = [
        "export LC_ALL=C DEBIAN_FRONTEND=noninteractive",
        "umask 022",        # root's usual one: the launcher's 077 is for its records only
        "trap 'echo $? > \"${0%.sh}.rc\"' EXIT",
        take_lock(False, wait=wait, poll=poll),
    ]
    if expect:
        out.append(PATH_STATE)
        out.append("stale=")
        for path, state in sorted(expect.items()):
            p = shlex.quote(path)
            out.append(f"[ \"$(path_state {p})\" = {shlex.quote(expected_state(state))} ] || stale=\"$stale {p}\"")
        out.append(f"if [ -n \"$stale\" ]; then echo \"{STALE_MARK}$stale\"; exit {STALE}; fi")
    if forget_runs:
        out.append("rm -f " + " ".join(f"{RUN_DIR}/{shlex.quote(r)}.*" for r in forget_runs))
    return "\n".join(out) + "\n" + steps


def launcher(script: str) -> str:
    """Store ``script``, run it detached (setsid, output to a root-only file), stream its output
    until it ends, print its status (EXIT_MARK) and wait for the run's ACK on stdin. Only an ack
    removes the record: without one (the connection is gone; ACK_WAIT s at most) it stays, an
    orphan for the next run's facts. fd 9 shares the lock with the script, so the lock is held
    until the record is settled. Hosts need util-linux (flock, setsid) and GNU tail."""
    if any(line == APPLY_EOF for line in script.splitlines()):
        raise ValueError(f"script contains the line {APPLY_EOF}")
    # One brace group: the shell parses all of it before running any, so the `read` below gets
    # the answer, never a rest of this script still unread on stdin.
    return f"""{{
export LC_ALL=C
umask 077
[ -d {STATE_DIR} ] || mkdir -m 755 -p {STATE_DIR} || exit 1
mkdir -p {RUN_DIR} && chmod 700 {RUN_DIR} || exit 1
run={RUN_DIR}/$(date +%Y%m%dT%H%M%S).$$
cat > "$run.sh" <<'{APPLY_EOF}' || {{ rm -f "$run.sh"; exit 1; }}
{script}{APPLY_EOF}
: > "$run.out" || exit 1
{open_lock()}setsid sh "$run.sh" >> "$run.out" 2>&1 < /dev/null &
pid=$!
echo $pid > "$run.pid"
( while kill -0 $pid 2>/dev/null; do echo '{HEARTBEAT}' >&2; sleep {HEARTBEAT_EVERY} >/dev/null 2>&1; done ) 9>&- &
beat=$!
tail -s 0.1 -n +1 -f --pid=$pid "$run.out" 9>&-
kill $beat 2>/dev/null
rc=$(cat "$run.rc" 2>/dev/null) || rc=255
echo "{EXIT_MARK}$rc"
( sleep {ACK_WAIT}; kill $$ ) >/dev/null 2>&1 9>&- &
dog=$!
if read -r answer && [ "$answer" = {ACK} ]; then rm -f "$run.sh" "$run.out" "$run.pid" "$run.rc"; fi
kill $dog 2>/dev/null
exit $rc
}}
"""


def stale_paths(text: str) -> list[str]:
    """The paths a STALE exit named."""
    for line in text.splitlines():
        if line.startswith(STALE_MARK):
            return line[len(STALE_MARK):].split()
    return []
