"""Converge hosts with a role: gather facts (one exec), plan locally, apply (one exec), in parallel.

Per host: open the connection, run the facts script, plan every resource, then either report
(--check) or run the apply script with the handlers. Hosts are independent: one failing or
unreachable host never stops the others, and every host's result is kept.

Concurrency is optimistic, per host: facts read under the host lock (shared), the apply takes it
exclusive and first checks that every path the plan read is as the facts saw it.
"""
from __future__ import annotations

import base64
import contextlib
import os
import shlex
import threading
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from . import apply, audit, facts as factlib
from .errors import UserError
from .resources import Change
from .transport import ConnectionLost, RemoteTimeout, HostConnection, Unreachable

# The sudo password of a non-root ansible_user, when no prompt gave it (never printed).
SUDO_ENV = "PROVISION_SUDO_PASSWORD"
_SUDO_TAKEN: list[str] = []         # what take_sudo_password() took out of the environment
FACTS_LOST = "connection lost while gathering facts: nothing changed; run again"
APPLY_LOST = "connection lost during apply: the host may be part-way; run again"
STALE = "changed by someone else since facts were gathered; run again"
LOCK_BUSY = (f"another deploy held the host lock ({apply.HOST_LOCK}) for {apply.LOCK_WAIT} s; "
             "gave up, nothing changed")


def take_sudo_password() -> str | None:
    """The sudo password from PROVISION_SUDO_PASSWORD, taken out of this process's environment on
    the first call (at start-up: tasks.py calls it as it loads), so that no child inherits it:
    inventory scripts, ssh's ProxyCommand, pip, verify's ssh. Later calls return what was taken;
    it goes only to sudo, through Options.sudo_password."""
    if SUDO_ENV in os.environ:
        _SUDO_TAKEN[:] = [os.environ.pop(SUDO_ENV)]
    return _SUDO_TAKEN[0] if _SUDO_TAKEN and _SUDO_TAKEN[0] else None


SECRET_STEP = ": a secret file's content, not shown"


class HostLocked(Exception):
    """The host lock stayed taken for the whole bounded wait."""


@dataclass
class Options:
    """How a run goes: the deploy's flags, and what is made before planning."""
    check: bool = False
    diff: bool = False
    forks: int = 20
    accept_new_host_keys: bool = False
    sudo_password: str | None = field(default=None, repr=False)     # secret: never in a repr
    mode: str | None = None
    tls: dict = field(default_factory=dict, repr=False)     # proxy name -> tls.Material, made before planning
    wheels: Callable | None = None                  # facts -> Wheelhouse; None: provision.wheels
    audit_run: str = ""         # a deploy's id in the audit trail (audit.py); "" writes no facts line
    trace: Callable | None = field(default=None, repr=False)   # -vvv: (host, command, script) per exec
    workers: int = 0            # processes the hosts are spread over (0: one per core, for enough hosts)


@dataclass
class StepResult:
    """One step of a host's run, as the recap and --json show it."""
    label: str
    status: str             # ok, changed, failed, skipped
    reason: str = ""
    output: str = ""
    diff: str = ""


@dataclass
class HostResult:
    """Everything a run did on one host: its steps, and why it failed or was unreachable."""
    host: str
    steps: list[StepResult] = field(default_factory=list)
    unreachable: str | None = None
    error: str | None = None
    exit_code: int = 0

    @property
    def failed(self) -> bool:
        return self.error is not None or any(s.status == "failed" for s in self.steps)

    def counts(self) -> dict[str, int]:
        return {
            "ok": sum(s.status in ("ok", "changed") for s in self.steps),
            "changed": sum(s.status == "changed" for s in self.steps),
            "failed": int(self.failed),
            "unreachable": int(self.unreachable is not None),
            "skipped": sum(s.status == "skipped" for s in self.steps),
        }

    def recap(self) -> str:
        c = self.counts()
        return (f"{self.host} ok={c['ok']} changed={c['changed']} failed={c['failed']} "
                f"unreachable={c['unreachable']} skipped={c['skipped']}")


class Connections:
    """One connection per host for the whole run, shared by every phase."""

    def __init__(self, options: Options):
        self.options = options
        self._by_host: dict[str, HostConnection] = {}
        self._lock = threading.Lock()

    def get(self, host) -> HostConnection:
        with self._lock:
            if host.name not in self._by_host:
                self._by_host[host.name] = HostConnection(host, accept_new=self.options.accept_new_host_keys,
                                                          sudo_password=self.options.sudo_password,
                                                          trace=self.options.trace)
            return self._by_host[host.name]

    def all(self) -> dict[str, HostConnection]:
        return dict(self._by_host)

    def close(self):
        for s in self._by_host.values():
            s.close()


def _pool(options, hosts):
    return ThreadPoolExecutor(max_workers=max(1, min(options.forks, len(hosts) or 1)))


def prefetch(roles_by_host: dict, hosts, inventory, options: Options, connections: Connections,
             reporter=None) -> dict:
    """Every host's facts for all its roles, in one exec per host, all hosts in parallel.
    Returns host name -> Facts, or the exception that stopped it (raised again by run_role)."""
    def one(host):
        try:
            req = factlib.FactRequest()
            for role in roles_by_host[host.name]:
                req = req.merge(fact_request(role, host, inventory, options))
            line = "" if options.check or not options.audit_run else \
                audit.facts_line(audit.fields(inventory.path, [], run=options.audit_run))
            conn = connections.get(host)
            _progress(reporter, host.name, "connecting")
            conn.open()
            _progress(reporter, host.name, "facts")
            found = gather(conn, req, reporter, line)
            _progress(reporter, host.name, "facts gathered")
            return host.name, found
        except Exception as exc:        # kept and reported per host by run_role
            return host.name, exc
    with _pool(options, hosts) as pool:
        return dict(pool.map(one, hosts))


def gather(conn: HostConnection, req, reporter=None, audit_line: str = "") -> factlib.Facts:
    """Run the facts script under the host lock, shared: it never reads a half-applied host.
    ``audit_line``: a deploy's audit line (audit.facts_line), written before anything is read."""
    conn.open()
    try:
        gathered = conn.run_script(apply.locked(audit_line + factlib.script(req), shared=True),
                                   timeout=apply.LOCK_WAIT + 120, on_line=lock_watch(conn.host.name, reporter))
    except ConnectionLost:
        raise ConnectionLost(FACTS_LOST) from None
    if gathered.rc == apply.LOCK_BUSY:
        raise HostLocked(LOCK_BUSY)
    if gathered.rc != 0:
        raise RuntimeError(f"facts script failed: {last_words(gathered.stderr)}")
    return factlib.parse(gathered.stdout)


def _progress(reporter, host_name: str, phase: str | None):
    if reporter is not None:
        reporter.progress(host_name, phase)


def lock_watch(host_name: str, reporter):
    """An on_line callback that reports, once, that the host lock is taken by someone else."""
    told = []

    def watch(line):
        if line.startswith(apply.LOCK_WAITING) and not told and reporter is not None:
            told.append(True)
            reporter.waiting(host_name, f"waiting for another deploy on {host_name} "
                                        f"(the host lock; up to {apply.LOCK_WAIT} s)")
    return watch


def last_words(text: str, limit: int = 300) -> str:
    """The end of a script's output, without the lock and heartbeat lines."""
    lines = [line for line in text.splitlines() if not line.startswith(factlib.MARK)]
    return "\n".join(lines).strip()[-limit:]


def run_role(role, hosts, inventory, options: Options, connections: Connections, reporter,
             facts: dict | None = None) -> dict[str, HostResult]:
    """Converge ``hosts`` with ``role`` in parallel (``options.forks`` at a time). ``facts``
    holds prefetched facts; a host's entry is dropped once something changed on it."""
    facts = facts if facts is not None else {}
    with _pool(options, hosts) as pool:
        return {r.host: r for r in pool.map(
            lambda host: converge(role, host, inventory, options, connections, reporter, facts), hosts)}


def converge(role, host, inventory, options: Options, connections: Connections, reporter, facts: dict,
             gate: Gate | None = None, planned: Callable | None = None, slots=None) -> HostResult:
    """One host with one role, every failure kept in its result (never raised): the others go on.
    ``gate``: what its switch waits for; ``planned(changing)`` is told once the plan is made;
    ``slots``: held while the host's applies run (``--forks``)."""
    result = HostResult(host.name)
    reporter.track(result)
    try:
        known = facts.get(host.name)
        if isinstance(known, Exception):
            raise known
        converge_host(role, host, inventory, options, connections.get(host), reporter, result, known,
                      gate=gate, planned=planned, slots=slots)
        ran = any(s.status == "changed" for s in result.steps) or (known is not None and known.orphans)
        if not options.check and ran:
            facts.pop(host.name, None)
    except HostLocked as exc:
        result.error = str(exc)
        reporter.failed(host.name, "lock", str(exc))
    except Unreachable as exc:
        result.unreachable = str(exc)
        reporter.unreachable(host.name, str(exc))
    except RemoteTimeout as exc:
        result.error = str(exc)
        reporter.failed(host.name, "run", str(exc))
    except factlib.UnsupportedHost as exc:
        result.error = str(exc)
        reporter.failed(host.name, "facts", str(exc))
    except UserError as exc:        # found while planning (a wheel the target cannot have): nothing changed
        result.error = str(exc)
        reporter.failed(host.name, "plan", str(exc))
    except Exception as exc:    # a host's failure must never stop the others
        result.error = f"{type(exc).__name__}: {exc}"
        reporter.failed(host.name, "run", result.error)
    finally:
        _progress(reporter, host.name, None)
    return result


def fact_request(role, host, inventory, options):
    req = factlib.FactRequest()
    for platform in factlib.every_platform():
        for r in role.resources(host, platform, inventory, options):
            req = req.merge(r.request())
    return req


# -- a switch that waits: the board of a run's hosts, and the gate of one host ----------------------

class Board:
    """Where the hosts of a run stand, for the hosts whose switch waits on others (a proxy waits
    for the backends it routes to). A host is planned (with or without changes to apply), then
    done (ok, or why not). Thread-safe; ``publish(event)`` hears every change made here (worker
    processes pass them on to each other, which ``apply_event`` takes in)."""

    def __init__(self, publish: Callable | None = None):
        self._cond = threading.Condition()
        self._changing: dict[str, bool] = {}
        self._done: dict[str, str | None] = {}      # name -> None (converged) or why it did not
        self.publish = publish

    def planned(self, name: str, changing: bool) -> None:
        self.apply_event(("planned", name, changing), local=True)

    def done(self, name: str, failure: str | None) -> None:
        self.apply_event(("done", name, failure), local=True)

    def apply_event(self, event: tuple, local: bool = False) -> None:
        kind, name, value = event
        with self._cond:
            if kind == "planned":
                self._changing.setdefault(name, value)
            else:
                self._done.setdefault(name, value)
            self._cond.notify_all()
        if local and self.publish is not None:
            self.publish(event)

    def wait_planned(self, names) -> None:
        with self._cond:
            self._cond.wait_for(lambda: all(n in self._changing or n in self._done for n in names))

    def converged_now(self, names) -> bool:
        """Every one of them has nothing to change or is done, without failing."""
        with self._cond:
            return all(self._done.get(n, "") is None or (n not in self._done and self._changing.get(n) is False)
                       for n in names)

    def wait_done(self, names) -> dict[str, str]:
        """Wait until every one of them is done (or planned with nothing to change); returns
        those that did not converge, with why."""
        with self._cond:
            self._cond.wait_for(lambda: all(n in self._done or self._changing.get(n) is False for n in names))
            return {n: self._done[n] for n in names if self._done.get(n) is not None}


@dataclass
class Gate:
    """What a host's switch waits for: ``needs``, hosts of this run that converge first (on
    ``board``), then ``check`` = (label, shell script), run on the host at the start of the apply
    that switches, before anything changes (the proxy asks its backends whether they answer)."""
    board: Board
    needs: tuple[str, ...]
    check: tuple[str, str] | None = None


@dataclass
class Plan:
    """A host's planned steps: prepare's first, then switch's from ``split`` on; the handlers."""
    resources: list
    changes: list[Change]
    handlers: list
    split: int

    def part(self, switch: bool) -> tuple[list, list[Change]]:
        cut = slice(self.split, None) if switch else slice(0, self.split)
        return self.resources[cut], self.changes[cut]

    def changing(self, switch: bool) -> bool:
        return any(c.changed for c in self.part(switch)[1])


FACTS_AFTER = "@@@ facts-after"     # a prepare apply's output: the switch's facts follow this line
_NO_SLOTS = contextlib.nullcontext()


def converge_host(role, host, inventory, options, conn: HostConnection, reporter, result: HostResult,
                  facts: factlib.Facts | None = None, gate: Gate | None = None, planned: Callable | None = None,
                  slots=None):
    """Plan, then apply in one exec. With a ``gate`` whose hosts are still converging, the host
    prepares (one exec, which also reads the switch's facts), waits for them, then switches (a
    second exec): a host that changes nothing still costs no exec at all."""
    slots = slots or _NO_SLOTS
    if facts is None:
        _progress(reporter, host.name, "facts")
        with slots:
            facts = gather(conn, fact_request(role, host, inventory, options), reporter)
    _progress(reporter, host.name, "planning")
    for orphan in facts.orphans:
        ended = f"exit {orphan.status}" if orphan.status.isdigit() else "killed before it ended"
        reporter.earlier(host.name, f"an earlier apply lost its connection and ran on: {ended}, "
                                    f"{apply.summary(apply.parse(orphan.log))}")
    plan = plan_parts(role, host, inventory, options, facts)
    changes, handlers = plan.changes, plan.handlers
    diffs = fetch_diffs(conn, changes) if options.diff else {}

    if options.check:
        for c in changes:
            status = "changed" if c.changed else "ok"
            step = StepResult(c.label, status, ("would change: " if c.changed else "") + c.reason,
                              diff=diffs.get(c.label, ""))
            result.steps.append(step)
            reporter.step(host.name, step)
        for h in handlers:
            step = StepResult(h.label, "changed", "would run (handler)")
            result.steps.append(step)
            reporter.step(host.name, step)
        return

    todo = [c for c in changes if c.changed]
    if planned is not None:
        planned(bool(todo or handlers or facts.orphans))
    if not todo and not handlers and not facts.orphans:
        for c in changes:
            result.steps.append(StepResult(c.label, "ok", c.reason))
        reporter.host_ok(host.name, len(changes))
        return
    switching = plan.changing(switch=True) or bool(handlers)
    if gate is None or not switching:
        with slots:
            run_apply(role, host, inventory, options, conn, reporter, result, facts, plan.resources, changes,
                      handlers, diffs)
        return
    gate.board.wait_planned(gate.needs)
    if gate.board.converged_now(gate.needs):        # nothing to wait for: one exec
        with slots:
            run_apply(role, host, inventory, options, conn, reporter, result, facts, plan.resources, changes,
                      handlers, diffs, check=gate.check)
        return
    switch_resources, _ = plan.part(switch=True)
    prepare_resources, prepare_changes = plan.part(switch=False)
    after = facts
    if not plan.changing(switch=False) and not facts.orphans:
        result.steps += [StepResult(c.label, "ok", c.reason) for c in prepare_changes]
    else:
        request = factlib.FactRequest()
        for r in switch_resources:
            request = request.merge(r.request())
        then = f"echo '{FACTS_AFTER}'\n( {factlib.script(request)} )"
        with slots:
            ran = run_apply(role, host, inventory, options, conn, reporter, result, facts, prepare_resources,
                            prepare_changes, [], diffs, then=then)
        if ran is None or FACTS_AFTER not in ran.stdout:
            _held(host, reporter, result, switch_resources, facts, "not reached: preparing the host failed")
            return
        after = factlib.parse(ran.stdout.split(FACTS_AFTER + "\n", 1)[1])
    failures = gate.board.wait_done(gate.needs)
    if failures:
        why = "; ".join(f"{name} {reason}" for name, reason in sorted(failures.items()))
        _held(host, reporter, result, switch_resources, after, f"not switched: {why}", role=role)
        return
    switch_changes = [r.plan(after) for r in switch_resources]
    known = role.handlers(host, after.platform)
    handlers = apply.handlers_to_run(switch_changes, after.pending & set(known), known)
    if not any(c.changed for c in switch_changes) and not handlers:
        for c in switch_changes:
            result.steps.append(StepResult(c.label, "ok", c.reason))
        return
    with slots:
        run_apply(role, host, inventory, options, conn, reporter, result, after, switch_resources, switch_changes,
                  handlers, diffs, check=gate.check)


def _held(host, reporter, result: HostResult, resources, facts, why: str, role=None):
    """The switch did not run: each step it would have changed, and each handler, is skipped."""
    changes = [r.plan(facts) for r in resources]
    known = role.handlers(host, facts.platform) if role is not None else {}
    handlers = apply.handlers_to_run(changes, facts.pending & set(known), known) if role is not None else []
    for c in changes:
        step = StepResult(c.label, "skipped", why) if c.changed else StepResult(c.label, "ok", c.reason)
        result.steps.append(step)
        reporter.step(host.name, step)
    for h in handlers:
        step = StepResult(h.label, "skipped", why)
        result.steps.append(step)
        reporter.step(host.name, step)


def run_apply(role, host, inventory, options, conn: HostConnection, reporter, result: HostResult,
              facts: factlib.Facts, resources, changes: list[Change], handlers: list, diffs: dict,
              check: tuple[str, str] | None = None, then: str = ""):
    """One exec: the changes (and handlers) of ``changes`` applied under the host lock, each step's
    outcome added to ``result``. Returns the run (None when the host refused it: stale or busy)."""
    todo = [c for c in changes if c.changed]
    upload_dir = conn.upload_dir() if any(c.uploads for c in todo) else "/nonexistent"
    uploads = {remote: (local, remote, digest) for c in todo for local, remote, digest in c.uploads}
    if uploads:
        conn.put_all(uploads.values())
    def apply_script(planned):
        steps = apply.build(planned, handlers, role.validators_for(facts.platform), facts.pending, upload_dir,
                            gate=check, then=then)
        steps = audit.wrap_apply(steps, audit.fields(inventory.path, [c.label for c in todo], run=options.audit_run))
        return apply.launcher(apply.guarded(steps, planned_paths(resources, changes, facts),
                                            [o.run for o in facts.orphans]))
    script = apply_script(changes)
    shown = apply_script([replace(c, script=SECRET_STEP) if c.secret else c for c in changes]) \
        if options.trace else None
    reporter.applying(host.name, apply.planned_steps(script))
    watch_lock = lock_watch(host.name, reporter)

    def watch(line):
        watch_lock(line)
        reporter.apply_line(host.name, line)
    try:
        ran = conn.run_script(script, on_line=watch, ack=(apply.EXIT_MARK, apply.ACK), shown=shown)
    except ConnectionLost:
        raise ConnectionLost(APPLY_LOST) from None
    finally:
        reporter.applied(host.name)
    result.exit_code = ran.rc
    if ran.rc in (apply.STALE, apply.LOCK_BUSY):
        why = STALE if ran.rc == apply.STALE else LOCK_BUSY
        result.error = why
        reporter.failed(host.name, "apply", why)
        return None
    outcomes = apply.parse(ran.stdout.split(FACTS_AFTER + "\n", 1)[0])
    if check is not None:
        out = outcomes.get(apply.GATE)
        step = StepResult(check[0], "failed" if out is None or out.rc != 0 else "ok",
                          "nothing changed" if out is None or out.rc != 0 else "", out.output if out else "")
        result.steps.append(step)
        reporter.step(host.name, step)
    for i, c in enumerate(changes):
        if not c.changed:
            step = StepResult(c.label, "ok", c.reason)
        else:
            step = _outcome_step(c.label, c.reason, outcomes.get(str(i)), diffs.get(c.label, ""))
        result.steps.append(step)
        reporter.step(host.name, step)
    for group in {c.validate for c in todo if c.validate}:
        out = outcomes.get(f"validate-{group}")
        if out is not None and out.rc not in (0, None):
            step = StepResult(f"configtest ({group})", "failed",
                              "validation failed: previous files restored, no reload", out.output)
            result.steps.append(step)
            reporter.step(host.name, step)
    for h in handlers:
        out = outcomes.get(f"handler-{h.name}")
        if out is None:
            continue
        step = _outcome_step(h.label, "handler", out, "")
        result.steps.append(step)
        reporter.step(host.name, step)
    if ran.rc != 0 and not result.failed:
        result.error = f"apply script exited {ran.rc}: {last_words(ran.stdout + ran.stderr)}"
        reporter.failed(host.name, "apply", result.error)
    return ran


def planned_paths(resources, changes: list[Change], facts: factlib.Facts) -> dict:
    """Every path a changing step's plan read, with the state the facts saw: the precondition."""
    return {path: facts.file(path) for r, c in zip(resources, changes) if c.changed for path in r.request().paths}


def plan_host(role, host, inventory, options, facts: factlib.Facts) -> tuple[list, list[Change], list]:
    """Pure: the host's resources, each one's planned change, and the handlers that would run."""
    plan = plan_parts(role, host, inventory, options, facts)
    return plan.resources, plan.changes, plan.handlers


def plan_parts(role, host, inventory, options, facts: factlib.Facts) -> Plan:
    """Pure: the plan, with the role's prepare steps first and its switch steps after them (a role
    without the two lists, such as the proxy's certificate alone, only prepares)."""
    if hasattr(role, "switch"):
        prepare = role.prepare(host, facts.platform, inventory, options)
        resources = prepare + role.switch(host, facts.platform, inventory, options)
    else:
        prepare = resources = role.resources(host, facts.platform, inventory, options)
    changes = [r.plan(facts) for r in resources]
    known_handlers = role.handlers(host, facts.platform)
    return Plan(resources, changes, apply.handlers_to_run(changes, facts.pending & set(known_handlers),
                                                          known_handlers), len(prepare))


def _outcome_step(label, reason, outcome, diff) -> StepResult:
    if outcome is None:
        return StepResult(label, "skipped", "not reached: an earlier step failed")
    if outcome.rc == 0:
        return StepResult(label, "changed", reason, outcome.output, diff)
    named = [line for line in outcome.output.splitlines() if line.startswith(apply.CHECK_FAILED)]
    why = f"exit {outcome.rc}" if outcome.rc is not None else "interrupted"
    return StepResult(label, "failed", f"{why}: {named[-1]}" if named else why, outcome.output, diff)


def fetch_diffs(conn: HostConnection, changes: list[Change]) -> dict[str, str]:
    """Unified diffs of the files about to change (one extra exec, only with --diff)."""
    wanted = [c for c in changes if c.changed and c.new_content is not None]
    if not wanted:
        return {}
    olds = {}
    existing = [c.diff_path for c in wanted if c.diff_path and not c.secret]     # a secret is never read
    if existing:
        script = "".join(f"echo '@@@ {i}'; base64 < {shlex.quote(p)}\n" for i, p in enumerate(existing))
        sections = factlib.split_sections(conn.run_script(script, timeout=60).stdout)
        for i, p in enumerate(existing):
            olds[p] = base64.b64decode("".join(sections.get(str(i), [])))
    return {c.label: c.diff(olds.get(c.diff_path, b"")) for c in wanted}
