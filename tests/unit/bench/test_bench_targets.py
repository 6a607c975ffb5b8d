"""invoke bench's verdict and its generated docs: a missed target exits 1, docs/bench.md is the one
rendered from the committed docs/bench.json, and the bench never writes the README."""
import json
from pathlib import Path

import pytest

from bench import speed as bench
from provision.errors import UserError

ROOT = Path(__file__).resolve().parents[3]


def measured(noop=0.5):
    runs = [{h: {"connections": 1, "execs": 1} for h in ("proxy", "web1", "web2")}]
    return {"date": "2026-01-01 00:00 UTC", "cores": 2, "python": "3.11", "command": "invoke bench",
            "sizes": [{"hosts": 3, "floor": {"ssh_true": bench.stats([0.5]), "script20": bench.stats([0.6])},
                       "scenarios": {"no-op": bench.scenario([noop], [0.2], runs),
                                     "cold": bench.scenario([8.0], [0.4], exit=0, failed_hosts=[])}}]}


def test_met_targets_exit_0_and_write_json_and_docs(tmp_path, capsys):
    code = bench.finish(measured(), tmp_path / "b.json", tmp_path / "bench.md", log=lambda m: None)
    assert code == 0
    result = json.loads((tmp_path / "b.json").read_text())
    assert [c["ok"] for c in result["checks"]] == [True, True, True, True, True]
    table = bench.markdown(bench.COLUMNS, bench.rows(result["sizes"]))
    assert table in (tmp_path / "bench.md").read_text()
    assert "| no-op | 3 | 0.50 |" in table


def test_an_impossible_target_exits_1(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "NOOP_SMALL_MAX", 0.0)
    code = bench.finish(measured(), tmp_path / "b.json", None, log=lambda m: None)
    assert code == 1
    missed = [c["check"] for c in json.loads((tmp_path / "b.json").read_text())["checks"] if c["ok"] is False]
    assert missed == ["no-op 3 hosts median"]


def test_a_slow_noop_exits_1():
    assert bench.exit_code(bench.checks(measured(noop=5.0)["sizes"])) == 1
    assert bench.exit_code(bench.checks(measured(noop=0.5)["sizes"])) == 0


def test_not_measured_is_not_a_miss():
    assert bench.exit_code([{"check": "a", "target": "", "measured": None, "ok": None}]) == 0


def test_bench_md_matches_the_committed_json_and_the_readme_carries_no_figure_table():
    result = json.loads((ROOT / "docs/bench.json").read_text())
    assert (ROOT / "docs/bench.md").read_text() == bench.bench_md(result)
    assert "bench table" not in (ROOT / "README.md").read_text()


def test_only_picks_sizes_by_host_count():
    assert bench.sizes_to_run(20, 97) == [0, 20, 97]
    assert bench.sizes_to_run(20, 0) == [0, 20]
    assert bench.sizes_to_run(20, 97, {3}) == [0]
    assert bench.sizes_to_run(20, 97, {23, 100}) == [20, 97]
    assert bench.parse_only("23,100") == {23, 100}
    assert bench.parse_only(None) is None


def test_only_rejects_a_size_the_bench_does_not_have_in_one_line():
    with pytest.raises(UserError, match=r"^--only 50: not a size of this bench \(host counts: 3, 23\)$"):
        bench.sizes_to_run(20, 0, {3, 50})
    with pytest.raises(UserError, match=r"^--only x: expected host counts"):
        bench.parse_only("x")


def test_a_size_measured_alone_replaces_its_own_and_keeps_the_others():
    previous = measured()
    previous["sizes"].append({"hosts": 23, "command": "old 23", "floor": {}, "scenarios": {}})
    new = {**measured(noop=0.7), "command": "invoke bench --only 3"}
    new["sizes"][0]["command"] = "invoke bench --only 3"
    out = bench.merged(previous, new)
    assert [s["hosts"] for s in out["sizes"]] == [3, 23]
    assert out["sizes"][0]["scenarios"]["no-op"]["median"] == 0.7
    assert out["sizes"][1]["command"] == "old 23"
    assert out["command"] == "invoke bench --only 3"
    assert bench.merged(None, new)["sizes"] == new["sizes"]


def test_bench_md_names_the_run_of_each_size():
    result = measured()
    result["sizes"][0].update(date="2026-01-02 10:00 UTC", load=[3.25, 2.0, 1.0], command="invoke bench --only 3")
    result["checks"] = bench.checks(result["sizes"])
    assert "- 3 hosts: 2026-01-02 10:00 UTC, load average 3.2 (**loaded**: above the 2 cores), " \
           "`invoke bench --only 3`" in bench.bench_md(result)
    result["sizes"][0].update(load=[1.5, 2.0, 1.0], loads=[[1.0, 2.5], [1.9, 2.2]])
    assert "- 3 hosts: 2026-01-02 10:00 UTC, load average 1.5, before its runs 1.0 to 1.9, " \
           "`invoke bench --only 3`" in bench.bench_md(result)


def test_committed_bench_has_the_peers_at_3_and_23_hosts_and_ours_at_100():
    sizes = {s["hosts"]: s for s in json.loads((ROOT / "docs/bench.json").read_text())["sizes"]}
    assert {3, 23, 100} <= set(sizes)
    assert "peers" not in sizes[100]
    for n in (3, 23, 100):
        assert "error" not in sizes[n]
        assert sizes[n]["floor"]["ssh_true"]["runs"] >= 3
        assert sizes[n]["scenarios"]["cold"]["runs"] >= (3 if n == 3 else 1)
        assert sizes[n]["scenarios"]["no-op"]["runs"] >= 3
    for n in (3, 23):
        assert set(sizes[n]["peers"]) == set(bench.TOOLS)
        for tool, peer in sizes[n]["peers"].items():
            assert peer["problems"] == [], (n, tool)
            assert peer["cold"]["runs"] >= (3 if n == 3 else 1) and peer["no-op"]["runs"] >= 1, (n, tool)
    table = bench.markdown(bench.COLUMNS, bench.rows(list(sizes.values())))
    for n in (3, 23):
        for scenario in ("cold", "no-op"):
            row = next(line for line in table.splitlines() if line.startswith(f"| {scenario} | {n} |"))
            assert row.count("x ours") == 3 and row.count("x floor") == 3, row


def test_figures_taken_above_the_core_count_are_not_written_unless_told(tmp_path):
    result = measured()
    result["sizes"][0].update(loads=[[1.2, 3.0], [2.6, 2.4]], load=[1.2, 1.0, 1.0], date="2026-01-02 10:00 UTC",
                              command="invoke bench --only 3")        # before the second run: 2.6 > 2 cores
    logged = []
    assert bench.finish(result, tmp_path / "b.json", tmp_path / "bench.md", log=logged.append) == 1
    assert not (tmp_path / "b.json").exists() and not (tmp_path / "bench.md").exists()
    assert "the load average reached 2.6 before a run, above the 2 cores (3 hosts)" in logged[-1]
    assert bench.finish(result, tmp_path / "b.json", tmp_path / "bench.md", log=logged.append,
                        allow_loaded=True) == 0
    assert "(**loaded**: above the 2 cores)" in (tmp_path / "bench.md").read_text()
    result["sizes"][0]["loads"] = [[1.2, 3.0], [1.9, 2.4]]          # after a run does not count: it is ours
    assert bench.finish(result, tmp_path / "c.json", None, log=logged.append) == 0


def test_the_import_time_and_the_peers_ratios_are_targets():
    result = measured()
    size = result["sizes"][0]
    size["peers"] = {"fabric": {"cold": bench.stats([20.0]), "no-op": bench.stats([1.0]), "problems": []},
                     "pyinfra": {"cold": bench.stats([30.0]), "no-op": bench.stats([1.0]), "problems": []}}
    found = {c["check"]: c for c in bench.checks(result["sizes"], {"module": "provision.deploy", "min_ms": 81.0,
                                                                   "median_ms": 90.0, "runs": 5})}
    assert found["import provision.deploy (min of 5)"]["ok"] is False
    assert (found["cold 3 hosts / fabric's, same run"]["measured"], found["cold 3 hosts / fabric's, same run"]["ok"]) \
        == (0.4, False)         # 8 s against 20 s: above 0.35x
    assert found["cold 3 hosts / pyinfra's, same run"]["ok"] is True      # 8/30 = 0.27x
    assert found["no-op 3 hosts median / ssh-true floor"]["ok"] is True


def test_cpu_per_host_and_the_one_process_no_op_are_in_the_table():
    result = measured()
    result["sizes"][0]["scenarios"]["no-op, 1 process"] = bench.scenario([0.9], [0.6], [])
    table = bench.rows(result["sizes"])
    noop = next(r for r in table if r[0] == "no-op")
    assert noop[bench.COLUMNS.index("cpu ms/host")] == "66.7"        # 0.2 s over 3 hosts
    assert next(r for r in table if r[0] == "no-op, 1 process")[bench.COLUMNS.index("cpu ms/host")] == "200.0"
