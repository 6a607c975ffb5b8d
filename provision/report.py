"""Progress lines while a run goes, a per-host recap at the end, and the --json result.
Rich on a terminal, plain lines otherwise. Nothing secret is ever passed in here."""
from __future__ import annotations

import json
import sys
import threading

from .engine import HostResult

COLORS = {"ok": "green", "changed": "yellow", "failed": "red", "skipped": "dim", "unreachable": "red",
          "waiting": "yellow", "earlier": "yellow"}


class Reporter:
    def __init__(self, stream=None, verbose: bool = False):
        self.stream = stream or sys.stdout
        self.verbose = verbose
        self._lock = threading.RLock()     # re-entered by the Ctrl-C handler on the main thread
        self._console = None
        self._closed = False                # after an interrupt's last words, nothing more is printed
        self._results = []                  # every host result so far, for an interrupted run's recap
        self._applying: set[str] = set()
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

    def applying(self, host):
        with self._lock:
            self._applying.add(host)

    def applied(self, host):
        with self._lock:
            self._applying.discard(host)

    def interrupted(self):
        """An interrupted run's last words: the recap of what is known, then the hosts whose apply
        script was running (it runs on, detached, on the host). Nothing is printed after."""
        with self._lock:
            self.info("")
            self.info("INTERRUPTED")
            self.recap(merge([{r.host: r} for r in self._results]))
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
    """2 when any host failed (a step, or a check added after) or was unreachable, else 0:
    the exit code says what the recap says."""
    return 2 if any(r.failed or r.unreachable for r in results) else 0


def to_json(results, extra: dict | None = None) -> str:
    hosts = {}
    for r in results:
        hosts[r.host] = {
            **r.counts(),
            "unreachable_reason": r.unreachable,
            "error": r.error,
            "steps": [{"step": s.label, "status": s.status, "reason": s.reason, "output": s.output,
                       "diff": s.diff} for s in r.steps],
        }
    return json.dumps({"hosts": hosts, **(extra or {})}, indent=2)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines()) if text else ""
