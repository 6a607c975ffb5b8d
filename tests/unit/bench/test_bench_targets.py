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
            "sizes": [{"hosts": 3, "floor": {"ssh_true": bench.stats([0.25]), "script20": bench.stats([0.3])},
                       "scenarios": {"no-op": bench.scenario([noop], [0.2], runs),
                                     "cold": bench.scenario([8.0], [0.4], exit=0, failed_hosts=[])}}]}


def test_met_targets_exit_0_and_write_json_and_docs(tmp_path, capsys):
    code = bench.finish(measured(), tmp_path / "b.json", tmp_path / "bench.md", log=lambda m: None)
    assert code == 0
    result = json.loads((tmp_path / "b.json").read_text())
    assert [c["ok"] for c in result["checks"]] == [True, True, True, True]
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
    assert "- 3 hosts: 2026-01-02 10:00 UTC, load average 3.2, `invoke bench --only 3`" in bench.bench_md(result)


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
            assert peer["cold"]["runs"] >= (3 if n == 3 else 1) and peer["no-op"]["runs"] == 1, (n, tool)
    table = bench.markdown(bench.COLUMNS, bench.rows(list(sizes.values())))
    for n in (3, 23):
        for scenario in ("cold", "no-op"):
            row = next(line for line in table.splitlines() if line.startswith(f"| {scenario} | {n} |"))
            assert row.count("x ours") == 3 and row.count("x floor") == 3, row
