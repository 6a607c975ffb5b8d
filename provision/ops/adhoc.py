"""`invoke run -- COMMAND`: an ad-hoc shell command on many hosts in parallel, as ansible's
ad-hoc mode does. Same transport, host-key checks, sudo handling and forks as deploy; each host
runs it under the host's provision lock. The command is shell text, as ssh passes it."""
from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from .. import apply
from .session import OpsError, open_run, ssh_counts

SHOWN_LINES = 40        # on screen, per host and stream; --json keeps everything


@dataclass
class HostRun:
    """One host's run of an ad-hoc command."""
    host: str
    rc: int | None          # None: unreachable
    stdout: str = ""
    stderr: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0


def script(command: str, as_root: bool) -> str:
    """The command in its own subshell, without the lock's descriptor (a daemon it starts must
    not keep the host locked). The host lock is root's: a command run as another user goes without."""
    body = f"( {command}\n) 9>&-\n"
    return apply.locked(body) if as_root else body


def run_everywhere(hosts, command: str, connections, forks: int, sudo: bool, timeout: float) -> list[HostRun]:
    def one(host):
        try:
            conn = connections.get(host)
            conn.open()                 # the login user is known once connected (ssh_config may name it)
            ran = conn.run_script(script(command, sudo or conn.user == "root"), timeout=timeout, become=sudo)
            return HostRun(host.name, ran.rc, ran.stdout, ran.stderr)
        except Exception as exc:        # unreachable or timed out: kept as that host's result
            return HostRun(host.name, None, error=str(exc) or type(exc).__name__)
    with ThreadPoolExecutor(max_workers=max(1, min(forks, len(hosts) or 1))) as pool:
        return list(pool.map(one, hosts))


def _tail(text: str) -> str:
    lines = text.rstrip("\n").splitlines()
    if len(lines) <= SHOWN_LINES:
        return "\n".join(lines)
    return "\n".join([f"... ({len(lines) - SHOWN_LINES} earlier lines in --json)"] + lines[-SHOWN_LINES:])


def report(results: list[HostRun], stream) -> None:
    for r in results:
        head = f"{r.host} | unreachable | {r.error}" if r.rc is None else \
            f"{r.host} | {'ok' if r.ok else 'failed'} | rc={r.rc}"
        print(head, file=stream)
        for text in (r.stdout, r.stderr):
            if text.strip():
                print("\n".join("    " + ln for ln in _tail(text).splitlines()), file=stream)
    failed = [r.host for r in results if not r.ok]
    print("", file=stream)
    print("RECAP", file=stream)
    for r in results:
        print(f"{r.host} rc={'-' if r.rc is None else r.rc} {'ok' if r.ok else 'FAILED'}", file=stream)
    if failed:
        print(f"failed on {len(failed)} of {len(results)} hosts: {', '.join(failed)}", file=stream)


def main(inventory_path: str, command: str, limit=None, sudo=False, forks=20, json_path=None,
         timeout=300, accept_new_host_keys=False, prompt_for_sudo_password=False, stream=None) -> int:
    stream = stream or sys.stdout
    if not command.strip():
        raise OpsError("run: no command given (put it after --, e.g. invoke run -- uptime)")
    inventory, options, connections = open_run(inventory_path, accept_new_host_keys,
                                               prompt_for_sudo_password and sudo, forks)
    hosts = inventory.select(limit)
    try:
        results = run_everywhere(hosts, command, connections, options.forks, sudo, float(timeout))
    finally:
        connections.close()
    report(results, stream)
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"command": command, "hosts": {r.host: asdict(r) for r in results},
                       "ssh": ssh_counts(connections)}, f, indent=2)
    return 0 if all(r.ok for r in results) else 2
