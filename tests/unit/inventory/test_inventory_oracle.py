"""Oracle: our loader against `ansible-inventory --list` on real inventories from public projects
(tests/fixtures/inventories/*/SOURCE names each one's repository, commit and path) and on
synthetic cases for what real files rarely show. Same hosts, same direct members and children
of every group, same merged variables for every host.

ansible-core comes with the `dev` extra (tests only); without it this test fails, never skips.
"""
import json
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from provision.inventory import read, show

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "inventories"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())


def source(case: str) -> Path:
    """The case's inventory: the entry named inventory (a file, a folder or inventory.EXT)."""
    found = sorted(CORPUS.glob(f"{case}/inventory*"))
    assert len(found) == 1, f"{case}: expected one inventory entry, found {found}"
    return found[0]


DRIVER = Path(__file__).with_name("ansible_list.py")


REPO = Path(__file__).resolve().parents[3]
# acceptance 6: --graph and --host NAME print what ansible-inventory prints
SHOWN = [("inventory/lab.yml", "web1"), ("tests/fixtures/inventories/synthetic-multi-group/inventory", "proxy"),
         ("tests/fixtures/inventories/synthetic-folder-mixed/inventory", "w1"),
         ("tests/fixtures/inventories/kolla-multinode/inventory", "control01"),
         ("tests/fixtures/inventories/synthetic-aliases/inventory.yml", "c1")]


def ansible_inventory(commands: list[list[str]]) -> list[str]:
    """Each command's output, from an empty folder and HOME (so no ansible.cfg or playbook
    group_vars of ours is read); an unparsed source is an error, not a warning."""
    assert importlib.util.find_spec("ansible"), "ansible-core missing: pip install -e '.[dev]'"
    with tempfile.TemporaryDirectory() as cwd:
        env = dict(os.environ, HOME=cwd, ANSIBLE_INVENTORY_UNPARSED_FAILED="1", ANSIBLE_NOCOLOR="1")
        done = subprocess.run([sys.executable, str(DRIVER)], input=json.dumps(commands), capture_output=True,
                              text=True, cwd=cwd, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    for args, result in zip(commands, results):
        assert result["rc"] == 0 and result["out"], f"ansible-inventory {' '.join(args)}: {result['stderr']}"
    return [r["out"] for r in results]


@pytest.fixture(scope="module")
def oracle() -> dict:
    """`ansible-inventory --list` of every case, and --graph/--host of the SHOWN ones, in one batch."""
    commands = [["-i", str(source(c)), "--list"] for c in CASES]
    for path, host in SHOWN:
        commands += [["-i", str(REPO / path), "--graph"], ["-i", str(REPO / path), "--host", host]]
    outputs = ansible_inventory(commands)
    lists = {c: json.loads(out) for c, out in zip(CASES, outputs)}
    shown = dict(zip([(p, kind) for p, _ in SHOWN for kind in ("graph", "host")], outputs[len(CASES):]))
    return {"list": lists, "shown": shown}


def test_corpus_is_large_and_sourced():
    real = [c for c in CASES if not c.startswith("synthetic-")]
    assert len(real) >= 20, real
    for case in CASES:
        text = (CORPUS / case / "SOURCE").read_text()
        assert case.startswith("synthetic-") or ("repository: https://github.com/" in text and "commit: " in text
                                                 and "path: " in text), case


@pytest.mark.parametrize("case", CASES)
def test_same_as_ansible_inventory(oracle, case):
    want = oracle["list"][case]
    got = read(source(case))
    groups = {g: body for g, body in want.items() if g != "_meta"}
    want_hosts = {h for body in groups.values() for h in body.get("hosts", [])}
    assert set(got.data.hosts) == want_hosts
    for g, body in groups.items():
        if g == "all":
            continue
        assert set(got.data.groups[g].hosts) == set(body.get("hosts", [])), g
        assert set(got.data.groups[g].children) == set(body.get("children", [])), g
    empty = {g for g, body in got.data.groups.items() if not body.hosts and not body.children}
    assert set(got.data.groups) - {"all"} - empty == set(groups) - {"all"}
    hostvars = want["_meta"]["hostvars"]
    for h in want_hosts:
        ours = json.loads(json.dumps(got.vars[h], default=str))
        assert ours == hostvars.get(h, {}), h


@pytest.mark.parametrize("path,host", SHOWN)
def test_graph_and_host_print_what_ansible_inventory_prints(oracle, path, host):
    loaded = read(REPO / path)
    assert show.graph(loaded) == oracle["shown"][(path, "graph")].rstrip("\n")
    assert json.loads(show.host(loaded, host)) == json.loads(oracle["shown"][(path, "host")])


def test_inventory_command_prints_graph_masked_host_and_ansibles_list(tmp_path):
    """The command itself, as a user runs it: a become password never reaches the screen in
    --host (a variable merely named like a secret shows as it is); --list is Ansible's JSON."""
    inv = tmp_path / "hosts"
    inv.write_text("[proxies]\nproxy ansible_host=10.0.0.1 ansible_become_password=hunter2 db_password=s3\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for run in ([sys.executable, "-m", "provision", "inventory", "-i", str(inv)],
                [sys.executable, "-m", "invoke", "-r", str(REPO), "inventory", "-i", str(inv)]):
        graph = subprocess.run(run + ["--graph"], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
        assert graph.stdout.splitlines() == ["@all:", "  |--@ungrouped:", "  |--@proxies:", "  |  |--proxy"]
        host = subprocess.run(run + ["--host", "proxy"], capture_output=True, text=True, env=env, timeout=60,
                              cwd=tmp_path)
        assert json.loads(host.stdout) == {"ansible_host": "10.0.0.1", "ansible_become_password": show.MASK,
                                           "db_password": "s3"}
        assert "hunter2" not in host.stdout + host.stderr
        listing = subprocess.run(run + ["--list"], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
        assert json.loads(listing.stdout)["_meta"]["hostvars"]["proxy"]["ansible_become_password"] == "hunter2"


@pytest.mark.parametrize("case", CASES)
def test_list_is_exactly_ansible_inventorys_json(oracle, case):
    """--list is machine input: the same JSON, every value as Ansible prints it, nothing masked."""
    assert json.loads(show.listing(read(source(case)))) == oracle["list"][case]
