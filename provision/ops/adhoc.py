"""`provision run -- COMMAND`: an ad-hoc shell command on many hosts in parallel, as ansible's
ad-hoc mode does. Same transport, host-key checks, sudo handling and forks as deploy; each host
runs it under the host's provision lock. The command is shell text, as ssh passes it."""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass

from .. import apply, report
from ..transport import Unreachable
from .session import OpsError, each_host, interrupted_recap, open_run, ssh_counts

SHOWN_LINES = 40        # on screen, per host and stream; --json keeps everything


@dataclass
class HostRun:
    """One host's run of an ad-hoc command."""
    host: str
    rc: int | None          # None: it did not run to its end (unreachable, or timed out)
    stdout: str = ""
    stderr: str = ""
    error: str = ""
    unreachable: bool = False

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def status(self) -> str:
        return "ok" if self.ok else "unreachable" if self.unreachable else "failed"


def script(command: str, as_root: bool) -> str:
    """The command in its own subshell, without the lock's descriptor (a daemon it starts must
    not keep the host locked). The host lock is root's: a command run as another user goes without."""
    body = f"( {command}\n) 9>&-\n"
    return apply.locked(body) if as_root else body


def run_everywhere(hosts, command: str, connections, forks: int, sudo: bool, timeout: float,
                   last_words=lambda done: None) -> list[HostRun]:
    def one(host):
        try:
            conn = connections.get(host)
            conn.open()                 # the login user is known once connected (ssh_config may name it)
            ran = conn.run_script(script(command, sudo or conn.user == "root"), timeout=timeout, become=sudo)
            return HostRun(host.name, ran.rc, ran.stdout, ran.stderr)
        except Unreachable as exc:
            return HostRun(host.name, None, error=str(exc), unreachable=True)
        except Exception as exc:        # timed out, or anything else: kept as that host's result
            return HostRun(host.name, None, error=str(exc) or type(exc).__name__)
    return each_host(hosts, one, forks, last_words)


def _tail(text: str) -> str:
    lines = text.rstrip("\n").splitlines()
    if len(lines) <= SHOWN_LINES:
        return "\n".join(lines)
    return "\n".join([f"... ({len(lines) - SHOWN_LINES} earlier lines in --json)"] + lines[-SHOWN_LINES:])


def show(r: HostRun, stream) -> None:
    head = f"{r.host} | {r.status} | " + (f"rc={r.rc}" if r.rc is not None else r.error)
    print(head, file=stream)
    for text in (r.stdout, r.stderr):
        if text.strip():
            print("\n".join("    " + ln for ln in _tail(text).splitlines()), file=stream)


def _word(r: HostRun) -> str:
    return f"rc={'-' if r.rc is None else r.rc} {r.status}"


def report_all(results: list[HostRun], stream) -> None:
    for r in results:
        show(r, stream)
    print("", file=stream)
    print("RECAP", file=stream)
    for r in results:
        print(f"{r.host} {_word(r)}", file=stream)
    failed = [r.host for r in results if r.status == "failed"]
    unreachable = [r.host for r in results if r.unreachable]
    if failed:
        print(f"failed on {len(failed)} of {len(results)} hosts: {', '.join(failed)}", file=stream)
    if unreachable:
        print(f"unreachable: {len(unreachable)} of {len(results)} hosts: {', '.join(unreachable)}", file=stream)


def exit_code(results: list[HostRun]) -> int:
    return report.exit_for(any(r.status == "failed" for r in results), any(r.unreachable for r in results))


def main(sources, command: str, limit=None, sudo=False, forks=20, json_path=None, timeout=300,
         accept_new_host_keys=False, sudo_password=None, extra_vars=(), trace=None, stream=None) -> int:
    stream = stream or sys.stdout
    if not command.strip():
        raise OpsError("run: no command given (put it after --, e.g. provision run -- uptime)")
    inventory, options, connections = open_run(sources, extra_vars, accept_new_host_keys, sudo_password, forks,
                                               trace)
    hosts = inventory.select(limit)

    def last_words(done):
        for r in (done[h.name] for h in hosts if h.name in done):
            show(r, stream)
        interrupted_recap(hosts, done, _word, stream)
    try:
        results = run_everywhere(hosts, command, connections, options.forks, sudo, float(timeout), last_words)
    finally:
        connections.close()
    report_all(results, stream)
    code = exit_code(results)
    if json_path:
        report.write_json(json_path, report.document(
            "run", {r.host: {"status": r.status, **asdict(r)} for r in results}, code,
            {"shell": command, "ssh": ssh_counts(connections)}))
    return code
