"""`invoke bench`: time the whole `invoke deploy` command on the lab, at 3 and 3 + N hosts.

Per size: a cold converge on fresh hosts, K no-op converges, a drift run (one file edited by
hand on web1), two change runs (single then balancer: one reload each), and the floors measured
in the same run (parallel `ssh true`; a 20-check script in one exec). SSH use per host comes
from the deploy's --json counters and is cross-checked on web1 with `journalctl -t sshd`. Where
worker processes would spread the hosts, a no-op in one process (--workers 1) is timed beside.

With --peers the tools take turns (ours, a peer, ours, the next peer, ...), so that the machine's
drift hits everyone alike. Before each run the bench waits (bounded) for the load average to
come down to the core count, and records it before and after; figures taken above the core count
are not written unless --loaded says so (and the table says so). The deploy path's import time
is recorded too, with the project's bytecode compiled first, as an installed copy has it.

The top half is pure (statistics, anchors, targets, rows, JSON); the runner is below it.
"""
from __future__ import annotations

import compileall
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from provision.errors import UserError
from provision.inventory import load
from provision.lab import api as lab_api

from . import peers
from .peers import TOOLS
from .startup import import_time
from .stats import ratio, stats

DEPLOY_PATH = "provision.deploy"

NOOP_SMALL_MAX = 0.9        # s, no-op median on 3 hosts
NOOP_FLOOR_RATIO_SMALL_MAX = 1.1    # no-op median over the ssh-true floor of the same run, 3 hosts
NOOP_FLOOR_RATIO_MAX = 1.5  # no-op median over the ssh-true floor, larger labs
NOOP_FLOOR_RATIO_BY_SIZE = {100: 1.0}
NOOP_CONNECTIONS_MAX = 1    # per host
NOOP_EXECS_MAX = 1          # per host
COLD_MAX = {3: 25.0, 23: 120.0, 100: 150.0}
COLD_VS_PEER_MAX = {"fabric": 0.35, "pyinfra": 0.3}     # our cold median over the peer's, same run
IMPORT_MAX_MS = 80.0        # import of the deploy path, bytecode cached (min of the runs)
WORKERS_FROM = 16           # hosts from which the bench also times a no-op in one process
SETTLE_MAX = 90             # s the bench waits for the load average to come down before a run

COLD_TIMEOUT = 600          # s; the engine's own per-exec bound is 900 s
DRIFT_HOST = "web1"
DRIFT_FILE = "/opt/provision/apps/hello/app.py"
JOURNAL_HOST = "web1"
# 20 read-only checks, like a facts script: the cost of one exec doing real work.
CHECK_SCRIPT = "\n".join(
    [f"test -e {p} && echo y || echo n" for p in
     ("/etc/os-release", "/etc/passwd", "/etc/apache2", "/etc/httpd", "/opt/provision",
      "/etc/systemd/system", "/usr/bin/python3", "/etc/hosts")]
    + [f"sha256sum {p} 2>/dev/null | cut -c1-16" for p in ("/etc/os-release", "/etc/passwd", "/etc/hosts")]
    + [f"systemctl is-active {u} 2>/dev/null" for u in ("ssh", "apache2", "systemd-networkd")]
    + [f"dpkg-query -W -f '${{Status}}\\n' {p} 2>/dev/null" for p in ("openssh-server", "apache2", "curl")]
    + ["id -u root", "uname -m", "cat /proc/loadavg"]) + "\n"


# --- pure: statistics and the result's shape -------------------------------------------------

def worst_per_host(ssh_runs: list[dict]) -> dict:
    """Most connections and most execs any host needed in any run, from deploy --json "ssh" maps."""
    conns = [c["connections"] for run in ssh_runs for c in run.values()]
    execs = [c["execs"] for run in ssh_runs for c in run.values()]
    return {"connections": max(conns) if conns else None, "execs": max(execs) if execs else None}


def count_sshd(lines: list[str]) -> dict:
    """Connections and execs in `journalctl -t sshd -o cat` lines (execs need LogLevel VERBOSE)."""
    return {"connections": sum(line.startswith("Accepted ") and " for " in line for line in lines),
            "execs": sum(line.startswith("Starting session: ") for line in lines)}


def failed_hosts(deploy_json: dict) -> list[str]:
    """Hosts a deploy --json result reports as failed or unreachable (sorted)."""
    return sorted(name for name, h in deploy_json.get("hosts", {}).items() if h.get("failed") or h.get("unreachable"))


def changed_hosts(deploy_json: dict) -> list[str]:
    """Hosts a deploy --json result reports as changed, failed or unreachable (sorted)."""
    return sorted(name for name, h in deploy_json.get("hosts", {}).items()
                  if h.get("changed") or h.get("failed") or h.get("unreachable"))


def scenario(times: list[float], cpus: list[float], ssh_runs: list[dict] | None = None, **extra) -> dict:
    out = {**stats(times), "times": times, "cpu": statistics.median(cpus) if cpus else None}
    if ssh_runs is not None:
        out["per_host"] = worst_per_host(ssh_runs)
    return {**out, **extra}


def peer_median(size: dict, tool: str, name: str) -> float | None:
    """A peer's median for a scenario, measured in the same run (None: not measured)."""
    return ((size.get("peers") or {}).get(tool) or {}).get(name, {}).get("median")


def exit_code(items: list[dict]) -> int:
    """1 when any target was measured and missed, else 0."""
    return 1 if any(c["ok"] is False for c in items) else 0


def checks(sizes: list[dict], startup: dict | None = None) -> list[dict]:
    """The targets, each with what was measured and whether it holds (ok is None: not measured)."""
    out = []

    def add(name, target, measured, ok):
        out.append({"check": name, "target": target, "measured": measured, "ok": ok})

    if startup:
        ms = startup.get("min_ms")
        add(f"import {startup.get('module')} (min of {startup.get('runs')})", f"<= {IMPORT_MAX_MS:g} ms", ms,
            None if ms is None else ms <= IMPORT_MAX_MS)
    for size in sizes:
        n = size["hosts"]
        if "error" in size:
            add(f"bench on {n} hosts ran to the end", "no error", size["error"][:200], False)
        sc = size.get("scenarios", {})
        noop = sc.get("no-op", {})
        median = noop.get("median")
        r = ratio(median, size.get("floor", {}).get("ssh_true", {}).get("median"))
        if n == 3:
            add(f"no-op {n} hosts median", f"<= {NOOP_SMALL_MAX} s", median,
                None if median is None else median <= NOOP_SMALL_MAX)
            limit = NOOP_FLOOR_RATIO_SMALL_MAX
        else:
            limit = NOOP_FLOOR_RATIO_BY_SIZE.get(n, NOOP_FLOOR_RATIO_MAX)
        add(f"no-op {n} hosts median / ssh-true floor", f"<= {limit}", r, None if r is None else r <= limit)
        per_host = noop.get("per_host") or {}
        for key, limit in (("connections", NOOP_CONNECTIONS_MAX), ("execs", NOOP_EXECS_MAX)):
            v = per_host.get(key)
            add(f"no-op {n} hosts {key} per host", f"<= {limit}", v, None if v is None else v <= limit)
        cold = sc.get("cold", {}).get("median")
        if n in COLD_MAX:
            failed = sc.get("cold", {}).get("failed_hosts")
            add(f"cold {n} hosts", f"<= {COLD_MAX[n]:g} s, no host failed", cold,
                None if cold is None else cold <= COLD_MAX[n] and not failed)
        drift = sc.get("drift")
        if drift:
            add(f"drift {n} hosts: only {DRIFT_HOST} changed, file restored", f"[{DRIFT_HOST!r}], restored",
                drift.get("changed_hosts"), drift.get("changed_hosts") == [DRIFT_HOST] and drift.get("restored"))
        for tool, peer in (size.get("peers") or {}).items():
            add(f"{tool} {n} hosts: cold changed every host and curl answered, no-op changed nothing",
                "no problem", "; ".join(peer["problems"])[:300] or "ok", not peer["problems"])
            if tool in COLD_VS_PEER_MAX:
                r = ratio(cold, (peer.get("cold") or {}).get("median"))
                add(f"cold {n} hosts / {tool}'s, same run", f"<= {COLD_VS_PEER_MAX[tool]}x", r,
                    None if r is None else r <= COLD_VS_PEER_MAX[tool])
        journal = size.get("journal")
        if journal:
            engine = journal.get("engine") or {}
            seen = journal.get("sshd") or {}
            add(f"journal {JOURNAL_HOST} ({n} hosts) agrees with counters", "equal", seen,
                bool(engine) and seen == engine)
    return out


def _num(v, unit="", digits=2) -> str:
    if v is None:
        return "-"
    if isinstance(v, int):
        return f"{v}{unit}"
    return f"{v:.{digits}f}{unit}"


COLUMNS = ("scenario", "hosts", "median s", "min s", "max s", "runs", "cpu s", "cpu ms/host", "conn/host",
           "execs/host", "floor s", "x floor", "ansible", "pyinfra", "fabric")
SCENARIOS = ("cold", "no-op", "no-op, 1 process", "drift", "change")


def _peer_cell(value: float | None, ours: float | None, floor: float | None, failed: bool = False) -> str:
    """A peer's median, with its ratio to ours and to the ssh floor of the same run; a run that
    failed its checks (exit, changed counts, curl) is marked so."""
    if value is None:
        return "-"
    parts = [f"{r:.1f}x {what}" for r, what in ((ratio(value, ours), "ours"), (ratio(value, floor), "floor"))
             if r is not None]
    cell = f"{value:.2f} ({', '.join(parts)})" if parts else f"{value:.2f}"
    return cell + (" FAILED, see targets" if failed else "")


def rows(sizes: list[dict]) -> list[list[str]]:
    """Table rows: one per scenario and size, then the floors; the peers' medians from the same
    run, each with its ratio to ours."""
    out = []
    for size in sizes:
        n = size["hosts"]
        if "floor" not in size:
            continue
        floor = size["floor"]["ssh_true"]["median"]
        for name in SCENARIOS:
            s = size["scenarios"].get(name)
            if not s:
                continue
            per_host = s.get("per_host") or {}
            cpu_host = None if s["cpu"] is None else 1000 * s["cpu"] / n
            out.append([name, str(n), _num(s["median"]), _num(s["min"]), _num(s["max"]), str(s["runs"]),
                        _num(s["cpu"]), _num(cpu_host, digits=1), _num(per_host.get("connections")),
                        _num(per_host.get("execs")), _num(floor), _num(ratio(s["median"], floor), "x", 1)]
                       + [_peer_cell(peer_median(size, t, name), s["median"], floor,
                                     bool(((size.get("peers") or {}).get(t) or {}).get("problems")))
                          for t in TOOLS])
        for key, label in (("ssh_true", "floor: ssh true, parallel"), ("script20", "floor: 20 checks, 1 exec")):
            f = size["floor"].get(key)
            if not f:
                continue
            out.append([label, str(n), _num(f["median"]), _num(f["min"]), _num(f["max"]), str(f["runs"]),
                        "-", "-", "-", "-", "-", _num(ratio(f["median"], floor), "x", 1), "-", "-", "-"])
    return out


def check_rows(items: list[dict]) -> list[list[str]]:
    def shown(v):
        return _num(v) if isinstance(v, (int, float, type(None))) else str(v)
    return [[c["check"], c["target"], shown(c["measured"]),
             "n/a" if c["ok"] is None else ("pass" if c["ok"] else "FAIL")] for c in items]


def markdown(columns, table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in table]
    return "\n".join(lines) + "\n"


class BenchOptionError(UserError):
    """An `invoke bench` option that names no size of the bench."""


def parse_only(text: str | None) -> set[int] | None:
    """``--only 3,23`` as a set of host counts (None: every size)."""
    if not text:
        return None
    try:
        return {int(n) for n in str(text).split(",")}
    except ValueError:
        raise BenchOptionError(f"--only {text}: expected host counts separated by commas, e.g. 3 or 23,100") from None


def sizes_to_run(extra: int, large: int, only: set[int] | None = None) -> list[int]:
    """Extra hosts per size to measure: 0 (3 hosts), ``extra`` and ``large``; with ``only``, just
    the sizes whose host count it names (so a long bench can run one size per lab hold)."""
    sizes = sorted({0, extra} | ({large} if large else set()))
    if only is None:
        return sizes
    unknown = only - {3 + e for e in sizes}
    if unknown:
        raise BenchOptionError(f"--only {','.join(map(str, sorted(unknown)))}: not a size of this bench "
                         f"(host counts: {', '.join(str(3 + e) for e in sizes)})")
    return [e for e in sizes if 3 + e in only]


def merged(previous: dict | None, new: dict) -> dict:
    """``new`` with the sizes of ``previous`` it did not measure kept as they were; each size
    carries the date, load and command of the run that measured it."""
    fresh = {s["hosts"] for s in new["sizes"]}
    kept = [s for s in (previous or {}).get("sizes", []) if s["hosts"] not in fresh]
    return {**new, "sizes": sorted(kept + new["sizes"], key=lambda s: s["hosts"])}


def to_json(result: dict) -> str:
    return json.dumps(result, indent=2, sort_keys=False) + "\n"


BENCH_MD_INTRO = """\
# Deploy benchmark on the lab

Generated by `invoke bench` from docs/bench.json; do not edit by hand.

Every time is the wall time of the whole command `python3 -m invoke deploy -i inventory/lab.yml`,
interpreter start-up included, the project's bytecode compiled as an installed copy has it; "cpu s"
is the control machine's CPU time for that command (user + system, median), "cpu ms/host" the
same per host. "conn/host" and "execs/host" are the most any host needed in any run, from
the deploy's own counters, cross-checked on web1 with `journalctl -t sshd` (sshd at LogLevel VERBOSE
for that run only). The floors were measured in the same run with the OpenSSH client, one client per
host, all at once. The ansible, pyinfra and fabric columns are those tools' medians for the same job
(bench/peers/), measured in the same run by `invoke bench --peers`, with their ratio to ours and
to the ssh floor; "-" means not measured in this run. With peers, the tools take turns (ours, a
peer, ours, the next peer, ...) for `--cold-runs` rounds at 3 hosts (one at larger sizes), each
cold run on fresh hosts and followed by a request through the proxy, each followed by a no-op
run that must report no change. Before each run the bench waits for the load average to come
down to the core count; a size measured above it is marked "loaded".

Scenarios: **cold** = fresh hosts (`lab.reset`), full deploy; **no-op** = nothing to change;
**no-op, 1 process** = the same with `--workers 1` (where worker processes would spread the hosts);
**drift** = one line appended by hand to /opt/provision/apps/hello/app.py on web1; **change** =
`--mode single`, then `--mode balancer` (one vhost change and one reload on the proxy each).
"""

# The text of figures taken before the bench took turns and recorded loads per run.
BENCH_MD_INTRO_BEFORE_TURNS = """\
# Deploy benchmark on the lab

Generated by `invoke bench` from docs/bench.json; do not edit by hand.

Every time is the wall time of the whole command `python3 -m invoke deploy -i inventory/lab.yml`,
interpreter start-up included; "cpu s" is the control machine's CPU time for that command
(user + system, median), "cpu ms/host" the same per host. "conn/host" and "execs/host" are the
most any host needed in any run, from the deploy's own counters, cross-checked on web1 with
`journalctl -t sshd` (sshd at LogLevel VERBOSE for that run only). The floors were measured in the
same run with the OpenSSH client, one client per host, all at once. The ansible, pyinfra and
fabric columns are those tools' medians for the same job (bench/peers/), measured in the same run
by `invoke bench --peers` after ours (this bench did not yet take turns), with their ratio to
ours and to the ssh floor; "-" means not measured in this run. Cold figures of the peers are
medians of `--cold-runs` runs at 3 hosts (one at larger sizes), each on fresh hosts and followed
by a request through the proxy; each tool's no-op run must report no change. The load average of
each size is the one when it started; above the core count, the size is marked "loaded".

Scenarios: **cold** = fresh hosts (`lab.reset`), full deploy; **no-op** = nothing to change;
**drift** = one line appended by hand to /opt/provision/apps/hello/app.py on web1; **change** =
`--mode single`, then `--mode balancer` (one vhost change and one reload on the proxy each).
"""


def loaded(size: dict, cores: int | None) -> bool:
    """Figures taken with the load average above the core count: before a run (``loads``, newer
    benches) or, for a size without per-run loads, when the size started."""
    runs = [before for before, _ in size.get("loads") or []] or [(size.get("load") or [0])[0]]
    return bool(cores) and max(runs) > cores


def bench_md(result: dict) -> str:
    load = result.get("load")
    cores = result.get("cores")
    intro = BENCH_MD_INTRO if "startup" in result else BENCH_MD_INTRO_BEFORE_TURNS
    head = [intro, f"- Date: {result.get('date')}", f"- Cores: {cores}, Python "
            f"{result.get('python')}" + (f", load average {load[0]:.1f} when it started (the machine is shared)"
                                         if load else ""),
            f"- Command: `{result.get('command')}`"]
    startup = result.get("startup")
    if startup:
        head.append(f"- Import of the deploy path (`{startup['module']}`, bytecode cached): "
                    f"{startup['min_ms']:.1f} ms min, {startup['median_ms']:.1f} ms median of {startup['runs']}")
    if any("command" in s for s in result["sizes"]):
        head += ["", "Each size was measured in one run, peers included (the lab is shared, so sizes may come "
                 "from separate runs):", ""]
        head += [f"- {s['hosts']} hosts: {s.get('date')}, load average {s['load'][0]:.1f}"
                 + (f", before its runs {min(b for b, _ in s['loads']):.1f} to {max(b for b, _ in s['loads']):.1f}"
                    if s.get("loads") else "")
                 + (f" (**loaded**: above the {cores} cores)" if loaded(s, cores) else "")
                 + f", `{s.get('command')}`"
                 for s in result["sizes"] if "command" in s]
    head.append("")
    return "\n".join(head) + "\n" + markdown(COLUMNS, rows(result["sizes"])) + "\n## Targets\n\n" + \
        markdown(("check", "target", "measured", "result"), check_rows(result["checks"]))


# --- runner: everything below touches the lab --------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
INVENTORY = "inventory/lab.yml"


@dataclass
class Run:
    """One timed `invoke deploy` command, with the load average before and after it."""
    wall: float
    cpu: float
    rc: int
    result: dict
    output: str
    load: tuple[float, float] = (0.0, 0.0)


LOADS: list[tuple[float, float]] = []       # every run's (load before, load after), this size
SETTLE = {"max": SETTLE_MAX}


def settle(cores: int | None = None, wait: float | None = None) -> float:
    """Wait (at most ``wait`` s) until the 1-minute load average is down to the core count;
    returns it."""
    cores = cores or os.cpu_count() or 1
    deadline = time.monotonic() + (SETTLE["max"] if wait is None else wait)
    while os.getloadavg()[0] > cores and time.monotonic() < deadline:
        time.sleep(2)
    return os.getloadavg()[0]


def timed(action):
    """``action()`` after the load settled, with the load before and after recorded in LOADS."""
    before = settle()
    out = action()
    LOADS.append((before, os.getloadavg()[0]))
    return out, LOADS[-1]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def deploy(*args: str, timeout: float = 1800, inventory: str = INVENTORY) -> Run:
    """Time the whole `python3 -m invoke deploy` command, as a user runs it, once the load settled."""
    with tempfile.NamedTemporaryFile(prefix="bench-", suffix=".json", delete=False) as f:
        json_path = f.name
    argv = [sys.executable, "-m", "invoke", "deploy", "-i", inventory, "--json", json_path, *args]

    def run():
        cpu0, t0 = _cpu(), time.perf_counter()
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        return proc, time.perf_counter() - t0, _cpu() - cpu0
    (proc, wall, cpu), load = timed(run)
    try:
        result = json.loads(Path(json_path).read_text())
    except (OSError, ValueError):
        result = {}
    finally:
        Path(json_path).unlink(missing_ok=True)
    return Run(wall, cpu, proc.returncode, result, proc.stdout + proc.stderr, load)


def compile_bytecode() -> None:
    """The project's bytecode, as pip writes it for an installed copy (whatever
    PYTHONDONTWRITEBYTECODE says: the peers' packages have theirs from pip)."""
    for folder in ("provision", "bench"):
        compileall.compile_dir(str(ROOT / folder), quiet=1)
    compileall.compile_file(str(ROOT / "tasks.py"), quiet=1)


def _ssh_argv(config: Path, host: str, command: str) -> list[str]:
    return ["ssh", "-F", str(config), "-o", "BatchMode=yes", host, command]


def ssh(config: Path, host: str, command: str, stdin: str | None = None) -> str:
    proc = subprocess.run(_ssh_argv(config, host, command), input=stdin, capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{host}: {command}: exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return proc.stdout


def parallel_ssh(config: Path, hosts: list[str], command: str, stdin: str | None = None) -> float:
    """Wall time of one real OpenSSH client per host, all started at once."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(_ssh_argv(config, h, command), stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for h in hosts]
    errors = []
    for h, p in zip(hosts, procs):
        _, err = p.communicate(stdin, timeout=120)
        if p.returncode != 0:
            errors.append(f"{h}: exit {p.returncode}: {err.strip()[-200:]}")
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError("floor: " + "; ".join(errors))
    return wall


def floors(config: Path, hosts: list[str], repeat: int) -> dict:
    true = [timed(lambda: parallel_ssh(config, hosts, "true"))[0] for _ in range(repeat)]
    checks = [timed(lambda: parallel_ssh(config, hosts, "sh -s", CHECK_SCRIPT))[0] for _ in range(repeat)]
    return {"ssh_true": {**stats(true), "times": true}, "script20": {**stats(checks), "times": checks}}


def _must(run: Run, what: str) -> Run:
    if run.rc != 0:
        raise RuntimeError(f"{what}: deploy exited {run.rc}:\n{run.output[-3000:]}")
    return run


def sshd_counts_during(config: Path, hosts: list[str], action) -> tuple[dict, object]:
    """Run ``action()`` with sshd at LogLevel VERBOSE on ``hosts`` (a drop-in, removed after) and
    count, from each host's `journalctl -t sshd` (sshd logs each login's lines under that login's own
    unit, so `journalctl -u ssh` undercounts), the
    connections and execs it received meanwhile. Returns ({host: counts}, what action returned)."""
    dropin = "/etc/ssh/sshd_config.d/zz-bench-verbose.conf"
    for h in hosts:
        ssh(config, h, f"echo 'LogLevel VERBOSE' > {dropin} && systemctl reload ssh")
    try:
        time.sleep(0.5)
        since = time.time()          # the hosts share the machine's clock
        time.sleep(0.2)
        outcome = action()
        time.sleep(0.5)              # sshd logs the close after the client exits
        until = time.time()
        time.sleep(0.2)
        seen = {h: count_sshd(ssh(config, h, f"journalctl -t sshd -o cat --since @{since:.6f} "
                                             f"--until @{until:.6f}").splitlines()) for h in hosts}
    finally:
        for h in hosts:
            ssh(config, h, f"rm -f {dropin} && systemctl reload ssh")
        for h in hosts:
            _wait_for_ssh(config, h)
    return seen, outcome


def _wait_for_ssh(config: Path, host: str, seconds: float = 20) -> None:
    """sshd re-executes itself on reload: its port is closed for a moment (longer on a busy machine)."""
    deadline = time.monotonic() + seconds
    while subprocess.run(_ssh_argv(config, host, "true"), capture_output=True, timeout=30).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{host}: ssh did not come back within {seconds:g} s after reloading sshd")
        time.sleep(0.3)


def journal_check(config: Path, log, deploy_=deploy) -> dict:
    """One no-op run with sshd at LogLevel VERBOSE on JOURNAL_HOST."""
    counts, run = sshd_counts_during(config, [JOURNAL_HOST], lambda: _must(deploy_(), "journal check run"))
    seen = counts[JOURNAL_HOST]
    engine = {k: v for k, v in (run.result.get("ssh", {}).get(JOURNAL_HOST) or {}).items()
              if k in ("connections", "execs")}       # sshd's journal has no word for uploads
    log(f"  journal on {JOURNAL_HOST}: {seen}; deploy counters: {engine}")
    return {"host": JOURNAL_HOST, "sshd": seen, "engine": engine, "wall": run.wall}


def drift_check(config: Path, log, deploy_=deploy) -> dict:
    """Edit a deployed file by hand; the next run must change that host only and restore the file."""
    before = ssh(config, DRIFT_HOST, f"sha256sum {DRIFT_FILE}").split()[0]
    ssh(config, DRIFT_HOST, f"echo '# edited by hand' >> {DRIFT_FILE}")
    run = _must(deploy_(), "drift run")
    after = ssh(config, DRIFT_HOST, f"sha256sum {DRIFT_FILE}").split()[0]
    hosts = changed_hosts(run.result)
    log(f"  drift: changed {hosts}, file restored: {after == before}, {run.wall:.2f} s")
    return {"run": run, "changed_hosts": hosts, "restored": after == before}


def bench_size(api, extra: int, runs: int, log, with_peers: bool = False, cold_runs: int = 3) -> dict:
    """One size: the floors, then our cold and no-op runs, taking turns with the peers' (ours, a
    peer, ours, the next peer, ...: ``cold_runs`` rounds at 3 hosts, one at larger sizes), then
    on our deployed hosts the journal check, a drift run, two change runs and, where worker
    processes spread the hosts, no-op runs in one process."""
    LOADS.clear()
    info = api.up(extra=extra, log=log)
    log(f"Resetting {len(info.hosts)} hosts for a cold converge")
    info = api.reset(log=log)
    config, names = info.ssh_config, list(info.hosts)
    run = functools.partial(deploy, inventory=str(info.inventory))
    n = len(names)
    log(f"[{n} hosts] floors")
    floor = floors(config, names, max(3, runs))
    log(f"  ssh true {floor['ssh_true']['median']:.2f} s, 20 checks {floor['script20']['median']:.2f} s")
    slots = [tool for _ in range(cold_runs if n == 3 else 1) for tool in TOOLS] if with_peers else [None]
    spec = peers.job(load(info.inventory), info.ssh_config, info.known_hosts) if with_peers else None
    colds, noops, floor_times, by_tool = [], [], list(floor["ssh_true"]["times"]), {}
    with tempfile.TemporaryDirectory(prefix="peers-") as work:
        if with_peers:
            peers.write_inputs(Path(work), spec)
        for i, tool in enumerate(slots + ["ours"] if with_peers else slots):
            if i:
                api.reset(log=lambda m: None)        # fresh hosts (the peers' apps hold our ports)
            log(f"[{n} hosts] cold converge (ours){f', turn {i + 1}' if with_peers else ''}")
            colds.append(run(timeout=COLD_TIMEOUT))
            cold = colds[-1]
            log(f"  cold {cold.wall:.1f} s, cpu {cold.cpu:.1f} s, exit {cold.rc}, failed hosts {failed_hosts(cold.result)}")
            if cold.rc != 0:
                log(cold.output[-3000:])
                _must(run(timeout=COLD_TIMEOUT), "finishing run after a failed cold converge")
            for k in range(runs if i == 0 else 1):
                noops.append(_must(run(), "no-op run"))
                if changed_hosts(noops[-1].result):
                    raise RuntimeError(f"no-op run changed {changed_hosts(noops[-1].result)}:\n{noops[-1].output[-2000:]}")
                log(f"  no-op {len(noops)}: {noops[-1].wall:.2f} s, cpu {noops[-1].cpu:.2f} s")
            if i:
                floor_times.append(timed(lambda: parallel_ssh(config, names, "true"))[0])
            if tool in TOOLS:
                peer_turn(api, tool, spec, Path(work), by_tool.setdefault(tool, {"cold": [], "no-op": [],
                                                                                "problems": []}), log)
    floor["ssh_true"] = {**stats(floor_times), "times": floor_times}
    journal = journal_check(config, log, run)
    drift = drift_check(config, log, run)
    changes = []
    for mode in ("single", "balancer"):
        changes.append(_must(run("--mode", mode), f"change run ({mode})"))
        log(f"  change to {mode}: {changes[-1].wall:.2f} s, changed {changed_hosts(changes[-1].result)}")
    one_process = []
    if n >= WORKERS_FROM:
        for i in range(runs):
            one_process.append(_must(run("--workers", "1"), "no-op run in one process"))
            log(f"  no-op, 1 process {i + 1}/{runs}: {one_process[-1].wall:.2f} s, cpu {one_process[-1].cpu:.2f} s")
    d = drift["run"]
    scenarios = {
        "cold": scenario([r.wall for r in colds], [r.cpu for r in colds], exit=max(r.rc for r in colds),
                         failed_hosts=sorted({h for r in colds for h in failed_hosts(r.result)})),
        "no-op": scenario([r.wall for r in noops], [r.cpu for r in noops],
                          [r.result.get("ssh", {}) for r in noops],
                          ssh=[r.result.get("ssh", {}) for r in noops]),
        "drift": scenario([d.wall], [d.cpu], [d.result.get("ssh", {})],
                          changed_hosts=drift["changed_hosts"], restored=drift["restored"]),
        "change": scenario([r.wall for r in changes], [r.cpu for r in changes],
                           [r.result.get("ssh", {}) for r in changes],
                           changed_hosts=[changed_hosts(r.result) for r in changes]),
    }
    if one_process:
        scenarios["no-op, 1 process"] = scenario([r.wall for r in one_process], [r.cpu for r in one_process],
                                                 [r.result.get("ssh", {}) for r in one_process])
    out = {"hosts": n, "floor": floor, "scenarios": scenarios, "journal": journal, "loads": list(LOADS)}
    if with_peers:
        out["peers"] = {tool: {"cold": stats(t["cold"]), "no-op": stats(t["no-op"]), "problems": t["problems"]}
                        for tool, t in by_tool.items()}
    return out


def peer_turn(api, tool: str, spec: dict, work: Path, into: dict, log) -> None:
    """A peer's turn: a cold run on fresh hosts, then (if that worked) a no-op run."""
    (wall, problem), _ = timed(lambda: peers.cold(api, tool, spec, work, log, f" {len(into['cold']) + 1}"))
    into["cold"].append(wall)
    if problem:
        into["problems"].append(problem)
        return
    (wall, problem), _ = timed(lambda: peers.noop(tool, spec, work, log))
    into["no-op"].append(wall)
    if problem:
        into["problems"].append(problem)


def print_tables(result: dict) -> None:
    console = Console(width=None if sys.stdout.isatty() else 200)
    table = Table(title="invoke deploy, whole command (anchors: median s of other tools on this lab)")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col == "scenario" else "right")
    for r in rows(result["sizes"]):
        table.add_row(*r)
    console.print(table)
    targets = Table(title="Targets")
    for col in ("check", "target", "measured", "result"):
        targets.add_column(col)
    for r in check_rows(result["checks"]):
        targets.add_row(*r[:3], {"pass": "[green]pass[/]", "FAIL": "[red]FAIL[/]"}.get(r[3], r[3]))
    console.print(targets)


def finish(result: dict, json_path: Path, docs: Path | None, log=print, allow_loaded: bool = False) -> int:
    """Check the targets, print the tables, write the JSON and the docs rendered from it; the
    exit code says whether every measured target held. Figures taken at a load average above
    the core count are printed, not written, unless ``allow_loaded`` (they are marked)."""
    result["checks"] = checks(result["sizes"], result.get("startup"))
    print_tables(result)
    busy = [s["hosts"] for s in result["sizes"] if s.get("loads") and loaded(s, result.get("cores"))]
    if busy and not allow_loaded:
        worst = max(b for s in result["sizes"] for b, _ in s.get("loads") or [])
        log(f"not written: the load average reached {worst:.1f} before a run, above the {result.get('cores')} "
            f"cores ({', '.join(map(str, busy))} hosts); run on a quiet machine, or pass --loaded to write them marked")
        return 1
    json_path.write_text(to_json(result))
    log(f"wrote {json_path}")
    if docs is not None:
        docs.write_text(bench_md(result))
        log(f"wrote {docs}")
    failed = [c["check"] for c in result["checks"] if c["ok"] is False]
    if failed:
        log(f"{len(failed)} target(s) not met: {', '.join(failed)}")
    return exit_code(result["checks"])


def render(log=print) -> int:
    """docs/bench.md again from the committed docs/bench.json (no lab)."""
    result = json.loads((ROOT / "docs" / "bench.json").read_text())
    (ROOT / "docs" / "bench.md").write_text(bench_md(result))
    log("rendered docs/bench.md from docs/bench.json")
    return exit_code(checks(result["sizes"], result.get("startup")))


def main(extra: int = 20, runs: int = 5, json_path: str | None = None, log=print, with_peers: bool = False,
         cold_runs: int = 3, large: int = 0, only: set[int] | None = None, allow_loaded: bool = False,
         settle_max: float = SETTLE_MAX) -> int:
    api = lab_api
    inventory = ROOT / INVENTORY
    saved = inventory.read_bytes()
    todo = sizes_to_run(extra, large, only)
    command = ["invoke", "bench", "--extra", str(extra), "--runs", str(runs)]
    command += ["--peers", "--cold-runs", str(cold_runs)] if with_peers else []
    command += ["--large", str(large)] if large else []
    command += ["--only", ",".join(str(n) for n in sorted(only))] if only else []
    command += ["--loaded"] if allow_loaded else []
    SETTLE["max"] = settle_max
    compile_bytecode()
    startup = import_time(DEPLOY_PATH, runs=5)
    log(f"import {DEPLOY_PATH}: {startup.min_ms:.1f} ms min, {startup.median_ms:.1f} ms median")
    result = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cores": os.cpu_count(), "python": sys.version.split()[0],
              "load": os.getloadavg(), "command": " ".join(command), "sizes": [],
              "startup": {"module": DEPLOY_PATH, "min_ms": startup.min_ms, "median_ms": startup.median_ms,
                          "runs": len(startup.times_ms)}}
    if with_peers:
        peers.ensure_venv(log)
    try:
        for size_extra in todo:
            try:
                peers_here = with_peers and not (large and size_extra == large)     # peers at 3 and 23 hosts only
                size = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "load": os.getloadavg(),
                        "command": result["command"],
                        **bench_size(api, size_extra, runs, log, with_peers=peers_here, cold_runs=cold_runs)}
                result["sizes"].append(size)
            except (RuntimeError, subprocess.SubprocessError, api.LabError) as exc:
                log(f"error: {exc}")
                result["sizes"].append({"hosts": 3 + size_extra, "error": str(exc)})
    finally:
        log("Restoring the 3-host lab, deployed in balancer mode")
        api.up(extra=0, log=log)
        if with_peers:
            api.reset(log=log)         # the peers' apps hold our ports
        if inventory.read_bytes() != saved:
            inventory.write_bytes(saved)
        restore = deploy("--mode", "balancer")
        if restore.rc != 0:
            log(f"warning: the restoring deploy exited {restore.rc}:\n{restore.output[-2000:]}")
    target = Path(json_path) if json_path else ROOT / "docs" / "bench.json"
    if only and target.exists():     # one size of a longer bench: the other sizes stay
        result = merged(json.loads(target.read_text()), result)
    if json_path:        # elsewhere: the committed docs stay as they are
        return finish(result, target, None, log, allow_loaded)
    return finish(result, target, ROOT / "docs" / "bench.md", log, allow_loaded)
