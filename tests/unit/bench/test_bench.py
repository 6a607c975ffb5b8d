"""The bench's pure parts: statistics, sshd journal counts, targets, table rows, JSON shape."""
import json

import pytest

from bench import speed as bench

JOURNAL_VERBOSE = """\
Connection from 10.123.0.1 port 57154 on 10.123.0.11 port 22 rdomain ""
Accepted key ED25519 SHA256:t/Qtxyk9cLIk5i8ERG+kYOsMXDQluWn4Yro6GF1SI6g found at /root/.ssh/authorized_keys:1
Accepted publickey for root from 10.123.0.1 port 57154 ssh2: ED25519 SHA256:t/Qtxyk9cLIk5i8ERG+kYOsMXDQluWn4Yro6GF1SI6g
pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)
pam_env(sshd:session): deprecated reading of user environment enabled
Starting session: command for root from 10.123.0.1 port 57154 id 0
Close session: user root from 10.123.0.1 port 57154 id 0
Starting session: command for root from 10.123.0.1 port 57154 id 0
Close session: user root from 10.123.0.1 port 57154 id 0
Starting session: subsystem 'sftp' for root from 10.123.0.1 port 57154 id 1
Connection closed by 10.123.0.1 port 57154
pam_unix(sshd:session): session closed for user root
Closing connection to 10.123.0.1 port 57154
"""


def size(hosts, noop_times, floor, per_host_runs=None, cold=None, drift=None, journal=None):
    per_host_runs = per_host_runs or [{f"h{i}": {"connections": 1, "execs": 1} for i in range(hosts)}]
    scenarios = {"no-op": bench.scenario(noop_times, [0.5] * len(noop_times), per_host_runs)}
    if cold is not None:
        scenarios["cold"] = bench.scenario([cold], [10.0])
    if drift is not None:
        scenarios["drift"] = bench.scenario([0.6], [0.5], per_host_runs, **drift)
    out = {"hosts": hosts, "floor": {"ssh_true": bench.stats([floor]), "script20": bench.stats([floor * 1.2])},
           "scenarios": scenarios}
    if journal is not None:
        out["journal"] = journal
    return out


def by_name(items):
    return {c["check"]: c for c in items}


def test_stats_median_min_max_runs():
    assert bench.stats([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0, "runs": 4}
    assert bench.stats([0.4]) == {"median": 0.4, "min": 0.4, "max": 0.4, "runs": 1}


def test_stats_of_nothing():
    assert bench.stats([]) == {"median": None, "min": None, "max": None, "runs": 0}


def test_ratio():
    assert bench.ratio(3.0, 2.0) == 1.5
    assert bench.ratio(None, 2.0) is None
    assert bench.ratio(1.0, 0) is None
    assert bench.ratio(1.0, None) is None


def test_worst_per_host_takes_the_maximum_over_hosts_and_runs():
    runs = [{"a": {"connections": 1, "execs": 1}, "b": {"connections": 1, "execs": 2}},
            {"a": {"connections": 2, "execs": 1}, "b": {"connections": 1, "execs": 1}}]
    assert bench.worst_per_host(runs) == {"connections": 2, "execs": 2}
    assert bench.worst_per_host([]) == {"connections": None, "execs": None}


def test_count_sshd_counts_logins_and_sessions():
    assert bench.count_sshd(JOURNAL_VERBOSE.splitlines()) == {"connections": 1, "execs": 3}


def test_count_sshd_at_info_level_sees_logins_only():
    info = [line for line in JOURNAL_VERBOSE.splitlines()
            if not line.startswith(("Starting session", "Close session", "Connection from", "Accepted key"))]
    assert bench.count_sshd(info) == {"connections": 1, "execs": 0}


def test_changed_hosts_counts_changed_failed_and_unreachable():
    result = {"hosts": {"web1": {"changed": 2, "failed": 0, "unreachable": 0},
                        "web2": {"changed": 0, "failed": 0, "unreachable": 0},
                        "proxy": {"changed": 0, "failed": 1, "unreachable": 0},
                        "web3": {"changed": 0, "failed": 0, "unreachable": 1}}}
    assert bench.changed_hosts(result) == ["proxy", "web1", "web3"]
    assert bench.changed_hosts({}) == []


def test_noop_small_target_is_absolute():
    ok = by_name(bench.checks([size(3, [0.5, 0.6, 0.7], floor=0.3)]))
    assert ok["no-op 3 hosts median"]["ok"] is True
    slow = by_name(bench.checks([size(3, [0.8, 1.0, 1.2], floor=0.3)]))
    assert slow["no-op 3 hosts median"]["ok"] is False
    assert slow["no-op 3 hosts median"]["measured"] == 1.0


def test_noop_large_target_is_relative_to_the_floor():
    items = by_name(bench.checks([size(23, [2.9, 3.0, 3.1], floor=2.0)]))
    assert items["no-op 23 hosts median / ssh-true floor"]["ok"] is True
    assert items["no-op 23 hosts median / ssh-true floor"]["measured"] == pytest.approx(1.5)
    items = by_name(bench.checks([size(23, [3.2], floor=2.0)]))
    assert items["no-op 23 hosts median / ssh-true floor"]["ok"] is False


def test_connection_and_exec_targets_use_the_worst_host():
    runs = [{"web1": {"connections": 1, "execs": 3}, "web2": {"connections": 1, "execs": 1}}]
    items = by_name(bench.checks([size(3, [0.5], floor=0.3, per_host_runs=runs)]))
    assert items["no-op 3 hosts connections per host"]["ok"] is True
    assert items["no-op 3 hosts execs per host"]["ok"] is False
    assert items["no-op 3 hosts execs per host"]["measured"] == 3


def test_cold_targets_by_size_and_not_measured_is_not_a_pass():
    items = by_name(bench.checks([size(3, [0.5], 0.3, cold=24.0), size(23, [2.0], 2.0, cold=130.0)]))
    assert items["cold 3 hosts"]["ok"] is True
    assert items["cold 23 hosts"]["ok"] is False
    missing = by_name(bench.checks([{"hosts": 3, "floor": {"ssh_true": bench.stats([])}, "scenarios": {}}]))
    assert missing["no-op 3 hosts median"]["ok"] is None
    assert missing["cold 3 hosts"]["ok"] is None


def test_drift_passes_only_when_that_host_alone_changed_and_the_file_is_back():
    name = "drift 3 hosts: only web1 changed, file restored"
    good = by_name(bench.checks([size(3, [0.5], 0.3, drift={"changed_hosts": ["web1"], "restored": True})]))
    assert good[name]["ok"] is True
    two = by_name(bench.checks([size(3, [0.5], 0.3, drift={"changed_hosts": ["web1", "web2"], "restored": True})]))
    assert two[name]["ok"] is False
    kept = by_name(bench.checks([size(3, [0.5], 0.3, drift={"changed_hosts": ["web1"], "restored": False})]))
    assert kept[name]["ok"] is False


def test_journal_check_compares_with_the_engine_counters():
    name = "journal web1 (3 hosts) agrees with counters"
    same = {"sshd": {"connections": 1, "execs": 1}, "engine": {"connections": 1, "execs": 1}}
    assert by_name(bench.checks([size(3, [0.5], 0.3, journal=same)]))[name]["ok"] is True
    more = {"sshd": {"connections": 1, "execs": 2}, "engine": {"connections": 1, "execs": 1}}
    assert by_name(bench.checks([size(3, [0.5], 0.3, journal=more)]))[name]["ok"] is False
    none = {"sshd": {"connections": 0, "execs": 0}, "engine": None}
    assert by_name(bench.checks([size(3, [0.5], 0.3, journal=none)]))[name]["ok"] is False


def test_rows_carry_ratio_to_floor_and_the_peers_of_the_same_run():
    measured = size(23, [3.0, 4.0, 5.0], floor=2.0, cold=100.0)
    measured["peers"] = {"ansible": {"no-op": bench.stats([49.9])}, "pyinfra": {"no-op": bench.stats([3.55])},
                         "fabric": {"no-op": bench.stats([5.8])}}
    table = bench.rows([measured])
    by_scenario = {r[0]: r for r in table}
    assert list(by_scenario) == ["cold", "no-op", "floor: ssh true, parallel", "floor: 20 checks, 1 exec"]
    noop = dict(zip(bench.COLUMNS, by_scenario["no-op"]))
    assert noop["median s"] == "4.00" and noop["min s"] == "3.00" and noop["max s"] == "5.00"
    assert noop["runs"] == "3" and noop["x floor"] == "2.0x"
    assert noop["conn/host"] == "1" and noop["execs/host"] == "1"
    assert (noop["ansible"], noop["pyinfra"], noop["fabric"]) == (
        "49.90 (12.5x ours, 24.9x floor)", "3.55 (0.9x ours, 1.8x floor)", "5.80 (1.4x ours, 2.9x floor)")
    floor = dict(zip(bench.COLUMNS, by_scenario["floor: ssh true, parallel"]))
    assert floor["ansible"] == "-" and floor["x floor"] == "1.0x"
    assert (floor["conn/host"], floor["execs/host"]) == ("-", "-")
    assert all(len(r) == len(bench.COLUMNS) for r in table)


def test_rows_without_peers_measured_show_a_dash():
    table = bench.rows([size(5, [1.0], floor=0.5)])
    noop = dict(zip(bench.COLUMNS, table[0]))
    assert (noop["ansible"], noop["pyinfra"], noop["fabric"]) == ("-", "-", "-")


def test_check_rows_show_pass_fail_and_not_measured():
    items = [{"check": "a", "target": "<= 1", "measured": 0.5, "ok": True},
             {"check": "b", "target": "<= 1", "measured": 2, "ok": False},
             {"check": "c", "target": "<= 1", "measured": None, "ok": None}]
    assert [r[1:] for r in bench.check_rows(items)] == [["<= 1", "0.50", "pass"], ["<= 1", "2", "FAIL"],
                                                        ["<= 1", "-", "n/a"]]


def test_markdown_table():
    text = bench.markdown(("a", "b"), [["1", "x|y"]])
    assert text == "| a | b |\n|---|---|\n| 1 | x\\|y |\n"


def test_json_round_trips():
    result = {"date": "2024-01-01", "sizes": [size(3, [0.5, 0.6], 0.3, cold=20.0)], "checks": []}
    result["checks"] = bench.checks(result["sizes"])
    back = json.loads(bench.to_json(result))
    assert back["sizes"][0]["scenarios"]["no-op"]["median"] == pytest.approx(0.55)
    assert back["sizes"][0]["scenarios"]["no-op"]["per_host"] == {"connections": 1, "execs": 1}
    assert {c["check"] for c in back["checks"]} >= {"no-op 3 hosts median", "cold 3 hosts"}


def test_check_script_has_twenty_checks():
    assert len(bench.CHECK_SCRIPT.strip().splitlines()) == 20


def test_failed_hosts_ignores_changed_ones():
    result = {"hosts": {"web1": {"changed": 2, "failed": 0, "unreachable": 0},
                        "web2": {"changed": 0, "failed": 1, "unreachable": 0}}}
    assert bench.failed_hosts(result) == ["web2"]


def test_a_cold_run_with_a_failed_host_misses_the_target_even_when_fast():
    s = size(3, [0.5], 0.3, cold=10.0)
    s["scenarios"]["cold"]["failed_hosts"] = ["web2"]
    assert by_name(bench.checks([s]))["cold 3 hosts"]["ok"] is False


def test_a_size_that_stopped_with_an_error_is_a_failed_check_and_has_no_rows():
    broken = {"hosts": 23, "error": "cold converge: deploy exited 2"}
    items = by_name(bench.checks([size(3, [0.5], 0.3), broken]))
    assert items["bench on 23 hosts ran to the end"]["ok"] is False
    kept = bench.rows([size(3, [0.5], 0.3), broken])
    assert kept and all(r[1] == "3" for r in kept)


def test_a_peer_that_failed_its_checks_is_marked_in_the_table():
    measured = size(3, [1.0], floor=0.5)
    measured["peers"] = {"pyinfra": {"no-op": bench.stats([3.0]), "problems": ["no-op: exit 1"]},
                         "fabric": {"no-op": bench.stats([2.0]), "problems": []}}
    noop = dict(zip(bench.COLUMNS, bench.rows([measured])[0]))
    assert noop["pyinfra"] == "3.00 (3.0x ours, 6.0x floor) FAILED, see targets"
    assert noop["fabric"] == "2.00 (2.0x ours, 4.0x floor)"


def test_with_peers_the_tools_take_turns_and_every_run_records_its_load(monkeypatch, tmp_path):
    from pathlib import Path
    from types import SimpleNamespace
    from bench import peers
    turns = []
    info = SimpleNamespace(hosts={"proxy": "a", "web1": "b", "web2": "c"}, ssh_config=tmp_path / "c",
                           known_hosts=None, inventory=Path("inventory/lab.yml"))
    api = SimpleNamespace(up=lambda extra, log: info, reset=lambda log: info)
    ok = {"hosts": {}, "ssh": {}}

    def deploy(*args, **kw):
        turns.append(("ours cold" if kw.get("timeout") == bench.COLD_TIMEOUT else "ours") if not args else " ".join(args))
        return bench.Run(1.0, 0.5, 0, ok, "", (0.5, 0.7))
    monkeypatch.setattr(bench, "deploy", deploy)
    monkeypatch.setattr(bench, "floors", lambda config, names, repeat: {
        "ssh_true": {**bench.stats([0.3]), "times": [0.3]}, "script20": bench.stats([0.4])})
    monkeypatch.setattr(bench, "parallel_ssh", lambda *a, **kw: 0.3)
    monkeypatch.setattr(bench, "journal_check", lambda config, log, run: {"engine": {}, "sshd": {}})
    monkeypatch.setattr(bench, "drift_check", lambda config, log, run: {"run": run(), "changed_hosts": ["web1"],
                                                                         "restored": True})
    monkeypatch.setattr(bench, "settle", lambda cores=None, wait=None: 0.5)
    monkeypatch.setattr(peers, "write_inputs", lambda work, spec: None)
    monkeypatch.setattr(peers, "cold", lambda api, tool, spec, work, log, label="": (turns.append(tool), (9.0, None))[1])
    monkeypatch.setattr(peers, "noop", lambda tool, spec, work, log: (2.0, None))
    size = bench.bench_size(api, 0, runs=2, log=lambda m: None, with_peers=True, cold_runs=1)
    # ours (then its no-ops), a peer, ours, the next peer, ...; ours again last, for the drift and change runs
    assert turns[:3] == ["ours cold", "ours", "ours"]
    assert [t for t in turns if t in ("ours cold", *bench.TOOLS)] == [
        "ours cold", "ansible", "ours cold", "pyinfra", "ours cold", "fabric", "ours cold"]
    assert turns[-2:] == ["--mode single", "--mode balancer"]
    assert set(size["peers"]) == set(bench.TOOLS) and size["peers"]["fabric"]["cold"]["runs"] == 1
    assert size["scenarios"]["cold"]["runs"] == 4 and len(size["loads"]) > 0
