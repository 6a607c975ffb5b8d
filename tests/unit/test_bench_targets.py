"""invoke bench's verdict and its generated docs: a missed target exits 1, and the README's
table is the one rendered from the committed docs/bench.json."""
import json
from pathlib import Path

from provision import bench

ROOT = Path(__file__).resolve().parents[2]


def measured(noop=0.5):
    runs = [{h: {"connections": 1, "execs": 1} for h in ("proxy", "web1", "web2")}]
    return {"date": "2026-01-01 00:00 UTC", "cores": 2, "python": "3.11", "command": "invoke bench",
            "sizes": [{"hosts": 3, "floor": {"ssh_true": bench.stats([0.25]), "script20": bench.stats([0.3])},
                       "scenarios": {"no-op": bench.scenario([noop], [0.2], runs),
                                     "cold": bench.scenario([8.0], [0.4], exit=0, failed_hosts=[])}}]}


def test_met_targets_exit_0_and_write_json_docs_and_readme(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{bench.README_START}\nold\n{bench.README_END}\n\nafter\n")
    code = bench.finish(measured(), tmp_path / "b.json", tmp_path / "bench.md", readme, log=lambda m: None)
    assert code == 0
    result = json.loads((tmp_path / "b.json").read_text())
    assert [c["ok"] for c in result["checks"]] == [True, True, True, True]
    table = bench.markdown(bench.COLUMNS, bench.rows(result["sizes"]))
    assert readme.read_text() == f"# x\n\n{bench.README_START}\n{table}{bench.README_END}\n\nafter\n"
    assert table in (tmp_path / "bench.md").read_text()
    assert "| no-op | 3 | 0.50 |" in table


def test_an_impossible_target_exits_1(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "NOOP_SMALL_MAX", 0.0)
    code = bench.finish(measured(), tmp_path / "b.json", None, None, log=lambda m: None)
    assert code == 1
    missed = [c["check"] for c in json.loads((tmp_path / "b.json").read_text())["checks"] if c["ok"] is False]
    assert missed == ["no-op 3 hosts median"]


def test_a_slow_noop_exits_1():
    assert bench.exit_code(bench.checks(measured(noop=5.0)["sizes"])) == 1
    assert bench.exit_code(bench.checks(measured(noop=0.5)["sizes"])) == 0


def test_not_measured_is_not_a_miss():
    assert bench.exit_code([{"check": "a", "target": "", "measured": None, "ok": None}]) == 0


def test_readme_table_matches_the_committed_json():
    result = json.loads((ROOT / "docs/bench.json").read_text())
    readme = (ROOT / "README.md").read_text()
    assert bench.with_readme_table(readme, result) == readme, "README's table is not the one from docs/bench.json"
    assert (ROOT / "docs/bench.md").read_text() == bench.bench_md(result)
