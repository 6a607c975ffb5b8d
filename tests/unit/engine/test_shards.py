"""--shard K/N and `invoke report merge`: any N runs cover any host list exactly once, stably;
merging the shards' --json files gives one unsharded run's recap, --json and exit code."""
import io
import json

import pytest
from hypothesis import given, settings, strategies as st

from provision import report, shards
from provision.engine import HostResult, StepResult

NAMES = st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30),
                 unique=True, max_size=60)


@settings(max_examples=300, deadline=None)
@given(names=NAMES, n=st.integers(1, 64))
def test_shards_are_disjoint_and_cover_every_host_in_its_order(names, n):
    picked = [shards.pick(names, (k, n)) for k in range(1, n + 1)]
    assert sorted(name for share in picked for name in share) == sorted(names)      # each exactly once
    for share in picked:
        assert share == [name for name in names if name in set(share)]             # the selection's order


@settings(max_examples=200, deadline=None)
@given(names=NAMES, n=st.integers(1, 16), data=st.data())
def test_a_host_s_shard_depends_on_its_name_only(names, n, data):
    others = data.draw(st.permutations(names))
    for k in range(1, n + 1):
        assert set(shards.pick(names, (k, n))) == set(shards.pick(others, (k, n)))
    assert all(1 <= shards.of(name, n) <= n for name in names)


def test_shard_of_a_name_is_fixed_for_good():
    # SHA-256 of the name, first 8 bytes big-endian, modulo N: the same on every machine, forever
    assert [shards.of(f"web{i}", 4) for i in range(1, 9)] == [shards.of(f"web{i}", 4) for i in range(1, 9)]
    import hashlib
    assert shards.of("web1", 4) == int.from_bytes(hashlib.sha256(b"web1").digest()[:8], "big") % 4 + 1


def test_hundred_hosts_in_four_shards_are_near_even():
    sizes = [len(shards.pick([f"web{i}" for i in range(1, 101)], (k, 4))) for k in range(1, 5)]
    assert sum(sizes) == 100 and min(sizes) >= 15


@pytest.mark.parametrize("spec,parsed", [("1/4", (1, 4)), ("4/4", (4, 4)), (" 2/3 ", (2, 3)), ("1/1", (1, 1))])
def test_shard_spec(spec, parsed):
    assert shards.parse(spec) == parsed


@pytest.mark.parametrize("spec", ["0/4", "5/4", "1/0", "a/b", "1/", "1-4", "-1/4", ""])
def test_a_bad_shard_spec_is_one_line(spec):
    with pytest.raises(shards.ShardError, match=r"^--shard .*: expected K/N with 1 <= K <= N, e\.g\. 1/4"):
        shards.parse(spec)


def run_json(results, **extra):
    return json.loads(report.to_json(results, extra))


def host(name, *statuses, error=None, unreachable=None):
    return HostResult(name, [StepResult(f"s{i}", s, "why") for i, s in enumerate(statuses)], error=error,
                      unreachable=unreachable)


def test_merging_the_shards_gives_the_unsharded_recap_json_and_exit_code(tmp_path):
    order = ["web1", "web2", "web3", "proxy"]
    whole = [host("web1", "ok", "changed"), host("web2", "failed", "skipped"), host("web3", "ok"),
             host("proxy", "ok", "skipped", "changed")]
    by_name = {r.host: r for r in whole}
    files = []
    for k, part in enumerate((["web2", "proxy"], ["web3"], ["web1"], [])):       # a shard may hold no host
        path = tmp_path / f"shard-{k}.json"
        path.write_text(report.to_json([by_name[n] for n in part],
                                       {"order": order, "ssh": {n: {"connections": 1, "execs": 1} for n in part},
                                        "smoke": {"proxy": True} if "proxy" in part else {}, "elapsed": 1.0,
                                        "shard": f"{k + 1}/4"}))
        files.append(str(path))
    out, merged_json = io.StringIO(), tmp_path / "all.json"
    code = shards.main(files, json_path=str(merged_json), reporter=report.Reporter(stream=out))
    expected = io.StringIO()
    report.Reporter(stream=expected).recap(whole)
    assert out.getvalue() == expected.getvalue()
    assert code == report.exit_code(whole) == 2
    merged = json.loads(merged_json.read_text())
    assert merged["hosts"] == run_json(whole)["hosts"]
    assert list(merged["hosts"]) == order and merged["order"] == order
    assert set(merged["ssh"]) == set(order) and merged["smoke"] == {"proxy": True}


def test_a_host_in_both_stages_adds_up_and_unreachable_stays(tmp_path):
    stage1 = tmp_path / "backends.json"
    stage2 = tmp_path / "proxies.json"
    stage1.write_text(report.to_json([host("tut", "changed"), host("web9", unreachable="timed out")],
                                     {"order": ["tut", "web9"]}))
    stage2.write_text(report.to_json([host("tut", "ok", "changed")], {"order": ["tut"]}))
    results, extra = shards.merge([shards.read(str(stage1)), shards.read(str(stage2))])
    assert [r.recap() for r in results] == ["tut ok=3 changed=2 failed=0 unreachable=0 skipped=0",
                                            "web9 ok=0 changed=0 failed=0 unreachable=1 skipped=0"]
    assert results[1].unreachable == "timed out" and extra["order"] == ["tut", "web9"]


def test_merge_refuses_what_is_not_a_deploy_result(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    with pytest.raises(shards.ShardError, match="x.json: not a deploy --json file"):
        shards.main([str(bad)], reporter=report.Reporter(stream=io.StringIO()))
    with pytest.raises(shards.ShardError, match="nope.json: no such file"):
        shards.main([str(tmp_path / "nope.json")], reporter=report.Reporter(stream=io.StringIO()))
    with pytest.raises(shards.ShardError, match="name the --json files"):
        shards.main([], reporter=report.Reporter(stream=io.StringIO()))
