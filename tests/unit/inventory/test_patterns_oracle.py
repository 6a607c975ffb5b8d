"""Oracle: host patterns (--limit, and the HOST argument of drain, undrain, facts) select what
ansible-core's own `ansible all -i INVENTORY --limit PATTERN --list-hosts` lists, on three
inventories of the corpus. ansible-core comes with the `dev` extra (tests only)."""
import json
import os
import subprocess
import sys
import tempfile

import pytest

from provision.inventory import InventoryError, patterns, read
from provision.inventory.errors import PatternWarning

from test_inventory_oracle import DRIVER, source

CASES = {
    "kolla-multinode": ["all", "*", "control*", "control01:network02", "control,network", "baremetal:!compute",
                        "common:&tls-backend", "!control:&baremetal", "~(control|network)0[12]",
                        "control[0]", "control[1:]", "baremetal[-1]", "*01:!monitoring*:&common",
                        "control01,nonexistent", "nova:&control:!control02", "compute??", "[cm]*01"],
    "ceph-all-daemons": ["all", "mons:osds", "mon*", "~^(mon|mgr)", "all:!osds:!mons", "osd[1:2]",
                         "ceph_monitoring:&mons", "clients,rgws:!client1", "*[0]"],
    "synthetic-diamond": ["top", "left:&right", "top:!mid", "mid:bottom", "b?", "~b", "bottom[0]",
                          "ungrouped", "all:!top"],
}
LIMIT_FILE = "control01\nnetwork*\n\n"


def ansible_hosts(commands: list[list[str]]) -> list[list[str]]:
    """Each --list-hosts run's hosts (none when ansible says nothing matched)."""
    with tempfile.TemporaryDirectory() as cwd:
        env = dict(os.environ, HOME=cwd, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0")
        done = subprocess.run([sys.executable, str(DRIVER)], input=json.dumps(commands), capture_output=True,
                              text=True, cwd=cwd, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    found = []
    for args, result in zip(commands, json.loads(done.stdout)):
        lines = (result["out"] or "").splitlines()
        assert result["rc"] == 0 or not lines, f"{args}: {result['stderr']}"
        found.append([line.strip() for line in lines[1:]] if lines else [])
    return found


def ours(loaded, pattern: str) -> list[str]:
    data = loaded.data
    matcher = patterns.Matcher(list(data.hosts), {g: data.members(g) for g in data.groups})
    chosen = set(matcher.evaluate(patterns.expand_files(patterns.split(pattern), "--limit")))
    return [h for h in data.hosts if h in chosen]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    limit_file = tmp_path_factory.mktemp("limit") / "hosts.txt"
    limit_file.write_text(LIMIT_FILE)
    runs = [(case, p) for case, pats in CASES.items() for p in pats] + [("kolla-multinode", f"@{limit_file}")]
    hosts = ansible_hosts([["ansible", "all", "-i", str(source(case)), "--limit", p, "--list-hosts"]
                           for case, p in runs])
    return dict(zip(runs, hosts))


@pytest.mark.parametrize("case", sorted(CASES))
def test_patterns_select_what_ansible_lists(oracle, case):
    loaded = read(source(case))
    checked = 0
    for (name, pattern), want in oracle.items():
        if name != case:
            continue
        assert sorted(ours(loaded, pattern)) == sorted(want), pattern
        checked += 1
    assert checked >= len(CASES[case])


def test_a_pattern_matching_nothing_is_one_line_naming_it(tmp_path):
    from provision.inventory import load
    inventory = load(source("synthetic-diamond"))
    with pytest.raises(InventoryError) as err:
        inventory.select("web*:!b1")
    assert str(err.value) == f"{source('synthetic-diamond')}: --limit 'web*:!b1': no host matches"
    with pytest.warns(PatternWarning, match="--limit 'typo' matches no host or group, ignored"):
        assert [h.name for h in inventory.select("b1,typo")] == ["b1"]


def test_split_keeps_addresses_and_ranges_whole():
    assert patterns.split("a:b:&c:!d") == ["a", "b", "&c", "!d"]
    assert patterns.split("web[1:3]") == ["web[1:3]"]
    assert patterns.split("fe80::1") == ["fe80::1"]
    assert patterns.split("db1:22") == ["db1:22"]
    assert patterns.split(" a , b ,") == ["a", "b"]


def test_order_is_plain_then_intersections_then_exclusions():
    assert patterns.ordered(["!a", "&b", "c", "!d", "e"]) == ["c", "e", "&b", "!a", "!d"]
    assert patterns.ordered(["!a"]) == ["all", "!a"]


def test_a_bad_regex_is_one_line():
    matcher = patterns.Matcher(["a"], {"all": ["a"]})
    with pytest.raises(InventoryError, match=r"pattern '~\(': not a valid regular expression"):
        matcher.evaluate(["~("])


def test_limit_file_that_is_missing_is_one_line(tmp_path):
    with pytest.raises(InventoryError, match="--limit @.*nope: cannot read: No such file or directory"):
        patterns.expand_files([f"@{tmp_path / 'nope'}"], "--limit")
