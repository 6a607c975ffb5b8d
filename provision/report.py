"""Progress while a run goes, a per-host recap at the end, the --json document and the exit code.

On a terminal (rich): one live line per host that changes as it moves (connecting, facts,
planning, applying step k/n, handlers) with the seconds spent in the step as a heartbeat, and
coloured result lines above it; NO_COLOR is honoured. Otherwise plain lines, `HOST | status |
text`, and the progress only with -vv. Nothing secret is ever passed in here.

The exit codes are every command's: 0 all fine, 1 bad input or usage (before any connection),
2 a host failed, 4 a host was unreachable and none failed, 130 interrupted (after a recap).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from . import apply
from .engine import HostResult

EXIT_OK, EXIT_USAGE, EXIT_FAILED, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 4, 130
SCHEMA = 1          # the --json documents' version: a field renamed or removed makes it 2

COLORS = {"ok": "green", "changed": "yellow", "failed": "red", "skipped": "dim", "unreachable": "red",
          "waiting": "yellow", "earlier": "yellow"}


class Reporter:
    """``verbose``: 0 results that changed or failed; 1 also steps that changed nothing; 2 also
    the progress as plain lines; 3 also each script sent to a host."""

    def __init__(self, stream=None, verbose: int = 0):
        self.stream = stream or sys.stdout
        self.verbose = int(verbose)
        self._lock = threading.RLock()     # re-entered by the Ctrl-C handler on the main thread
        self._console = None
        self._closed = False                # after an interrupt's last words, nothing more is printed
        self._results = []                  # every host result so far, for an interrupted run's recap
        self._applying: set[str] = set()
        self._progress: dict[str, list] = {}    # host -> [phase text, started, steps (key -> (k, label))]
        self._view_lock = threading.Lock()      # _progress only: the live display's thread reads it
        self._live = None
        if self.stream.isatty():
            # lazy: rich costs ~28 ms of start-up, needed only on a terminal
            from rich.console import Console
            self._console = Console(file=self.stream, highlight=False)

    def _line(self, host: str, status: str, text: str, detail: str = ""):
        with self._lock:
            if self._closed:
                return
            if self._console is not None:
                # lazy: rich costs ~28 ms of start-up, needed only on a terminal
                from rich.markup import escape
                c = COLORS.get(status, "white")
                self._console.print(f"[bold]{escape(host)}[/] [{c}]{status}[/] {escape(text)}")
                if detail:
                    self._console.print(escape(detail), style="dim")
            else:
                print(f"{host} | {status} | {text}", file=self.stream)
                if detail:
                    print(detail, file=self.stream)
            self.stream.flush()

    def step(self, host, step):
        if step.status == "ok" and not self.verbose:
            return
        detail = ""
        if step.status == "failed":
            detail = "\n".join(step.output.splitlines()[-25:])
        if step.diff:
            detail = (detail + "\n" + step.diff).strip()
        self._line(host, step.status, f"{step.label}: {step.reason}", _indent(detail))

    def host_ok(self, host, count):
        self._line(host, "ok", f"{count} steps, nothing to change")

    def failed(self, host, where, message):
        self._line(host, "failed", f"{where}: {message}")

    def unreachable(self, host, message):
        self._line(host, "unreachable", message)

    def waiting(self, host, message):
        self._line(host, "waiting", message)

    def earlier(self, host, message):
        self._line(host, "earlier", message)

    def track(self, result):
        """Keep a host's result, filled in as its run goes."""
        with self._lock:
            self._results.append(result)

    def applying(self, host, steps=()):
        """The apply script starts; ``steps``: its (key, label) pairs in order, for step k/n."""
        with self._lock:
            self._applying.add(host)
            numbered = {str(key): (k, label) for k, (key, label) in enumerate(steps, 1)}
            self._set_phase(host, f"applying ({len(numbered)} steps)", numbered)

    def applied(self, host):
        with self._lock:
            self._applying.discard(host)

    # -- progress ----------------------------------------------------------------------------------
    def progress(self, host, phase: str | None):
        """Where a host is now (connecting, facts, planning, ...); None: it is done."""
        with self._lock:
            if phase is None:
                with self._view_lock:
                    self._progress.pop(host, None)
                    left = bool(self._progress)
                if not left:
                    self._stop_live()
                return
            self._set_phase(host, phase)

    def apply_line(self, host, line: str):
        """A line of a running apply script: a step starting moves the host's progress on."""
        if not line.startswith(apply.STEP):
            return
        key, _, label = line[len(apply.STEP):].strip().partition(" ")
        with self._lock:
            with self._view_lock:
                entry = self._progress.get(host)
            steps = entry[2] if entry else {}
            k, _ = steps.get(key, (None, label))
            where = "handler" if key.startswith("handler-") else "step"
            count = f" {k}/{len(steps)}" if k else ""
            self._set_phase(host, f"applying {where}{count}: {label}", steps)

    def sent(self, host, command: str, script: str):
        """-vvv: a script sent to a host (callers leave out what is secret)."""
        if self.verbose < 3:
            return
        self._line(host, "exec", command, _indent(script.rstrip("\n")))

    def _set_phase(self, host, phase: str, steps=None):
        with self._view_lock:
            old = self._progress.get(host)
            steps = steps if steps is not None else (old[2] if old else {})
            self._progress[host] = [phase, time.monotonic(), steps]
        if self._console is not None:
            self._start_live()
        elif self.verbose >= 2:
            self._line(host, "progress", phase)

    def _start_live(self):
        if self._live is not None or self._closed:
            return
        # lazy: rich costs ~28 ms of start-up, needed only on a terminal
        from rich.live import Live
        self._live = Live(console=self._console, get_renderable=self._progress_view, refresh_per_second=4,
                          transient=True, redirect_stdout=False, redirect_stderr=False)
        self._live.start()

    def _stop_live(self):
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _progress_view(self):
        # lazy: rich costs ~28 ms of start-up, needed only on a terminal
        from rich.text import Text
        with self._view_lock:
            now = time.monotonic()
            rows = sorted(self._progress.items())
            width = max((len(h) for h, _ in rows), default=0)
            view = Text()
            for i, (host, (phase, started, _)) in enumerate(rows):
                view.append(("\n" if i else "") + host.ljust(width), style="bold")
                view.append(f"  {phase}", style="cyan")
                view.append(f"  {now - started:.0f} s", style="dim")
            return view

    def interrupted(self):
        """An interrupted run's last words: the recap of what is known, then the hosts whose apply
        script was running (it runs on, detached, on the host). Nothing is printed after."""
        with self._lock:
            self._stop_live()
            with self._view_lock:
                where = {host: phase for host, (phase, _, _) in self._progress.items()}
            self.info("")
            self.info("INTERRUPTED")
            results = merge([{r.host: r} for r in self._results])
            self.recap(results)
            for host in sorted(set(where) - {r.host for r in results}):
                self.info(f"{host} interrupted while {where[host]}")
            if self._applying:
                self.info(f"mid-apply: {', '.join(sorted(self._applying))}: their apply scripts finish on the "
                          "host; run again to see what they did")
            else:
                self.info("mid-apply: none")
            self._closed = True

    def info(self, text):
        with self._lock:
            if self._closed:
                return
            print(text, file=self.stream)
            self.stream.flush()

    def recap(self, results):
        with self._lock:
            with self._view_lock:
                self._progress.clear()
            self._stop_live()
        self.info("")
        self.info("RECAP")
        for r in results:
            self.info(r.recap())


def merge(phases: list[dict]) -> list:
    """Combine per-phase results into one HostResult per host, in first-seen order."""
    merged: dict[str, HostResult] = {}
    for phase in phases:
        for name, r in phase.items():
            m = merged.setdefault(name, HostResult(name))
            m.steps += r.steps
            m.unreachable = m.unreachable or r.unreachable
            m.error = m.error or r.error
            m.exit_code = m.exit_code or r.exit_code
    return list(merged.values())


def add_checks(results, checks: dict) -> None:
    """Count checks made after the run (the smoke request, host name -> StepResult) in the
    result of the host they went through, so that its recap and --json show them."""
    by_host = {r.host: r for r in results}
    for name, step in checks.items():
        by_host[name].steps.append(step)


def exit_code(results) -> int:
    """What the recap says: 2 when any host failed (a step, or a check added after), else 4 when
    any was unreachable, else 0."""
    return exit_for(any(r.failed for r in results), any(r.unreachable for r in results))


def exit_for(failed: bool, unreachable: bool) -> int:
    return EXIT_FAILED if failed else EXIT_UNREACHABLE if unreachable else EXIT_OK


def host_status(r: HostResult) -> str:
    """One word per host, the same in every command's --json: failed, unreachable, changed or ok."""
    if r.failed:
        return "failed"
    if r.unreachable:
        return "unreachable"
    return "changed" if any(s.status == "changed" for s in r.steps) else "ok"


def to_json(results, extra: dict | None = None, command: str = "deploy") -> str:
    hosts = {}
    for r in results:
        hosts[r.host] = {
            "status": host_status(r),
            **r.counts(),
            "unreachable_reason": r.unreachable,
            "error": r.error,
            "steps": [{"step": s.label, "status": s.status, "reason": s.reason, "output": s.output,
                       "diff": s.diff} for s in r.steps],
        }
    return document(command, hosts, exit_code(results), extra)


def document(command: str, hosts: dict, code: int, extra: dict | None = None) -> str:
    """Every command's --json: the schema version, the command, its exit code, one record per
    host (each with its one-word "status"), then what the command adds."""
    return json.dumps({"schema": SCHEMA, "command": command, "exit_code": code, "hosts": hosts, **(extra or {})},
                      indent=2)


def write_json(path: str | Path, text: str) -> None:
    """Written whole or not at all: a temp file beside it, then renamed into place."""
    path = Path(path)
    # lazy: tempfile (random, shutil) is needed only once a --json file is written
    import tempfile
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines()) if text else ""
