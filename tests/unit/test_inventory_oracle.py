"""Oracle: our loader against `ansible-inventory --list` on real inventories from public projects
(tests/fixtures/inventories/*/SOURCE names each one's repository, commit and path) and on
synthetic cases for what real files rarely show. Same hosts, same direct members and children
of every group, same merged variables for every host.

ansible-core comes with the `dev` extra (tests only); without it this test fails, never skips.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from provision.inventory import read

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "inventories"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())


def source(case: str) -> Path:
    """The case's inventory: the entry named inventory (a file, a folder or inventory.EXT)."""
    found = sorted(CORPUS.glob(f"{case}/inventory*"))
    assert len(found) == 1, f"{case}: expected one inventory entry, found {found}"
    return found[0]


DRIVER = Path(__file__).with_name("ansible_list.py")


@pytest.fixture(scope="module")
def oracle() -> dict:
    """`ansible-inventory --list` for every case, from an empty folder and HOME (so no ansible.cfg
    or playbook group_vars of ours is read); an unparsed source is an error, not a warning."""
    assert shutil.which("ansible-inventory"), "ansible-inventory missing: pip install -e '.[dev]' (ansible-core)"
    paths = {str(source(c)): c for c in CASES}
    with tempfile.TemporaryDirectory() as cwd:
        env = dict(os.environ, HOME=cwd, ANSIBLE_INVENTORY_UNPARSED_FAILED="1", ANSIBLE_NOCOLOR="1")
        done = subprocess.run([sys.executable, str(DRIVER), *paths], capture_output=True, text=True, cwd=cwd,
                              env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    for path, result in results.items():
        assert result["rc"] == 0 and result["list"], f"ansible-inventory -i {path}: {result['stderr']}"
    return {paths[p]: r["list"] for p, r in results.items()}


def test_corpus_is_large_and_sourced():
    real = [c for c in CASES if not c.startswith("synthetic-")]
    assert len(real) >= 20, real
    for case in CASES:
        text = (CORPUS / case / "SOURCE").read_text()
        assert case.startswith("synthetic-") or ("repository: https://github.com/" in text and "commit: " in text
                                                 and "path: " in text), case


@pytest.mark.parametrize("case", CASES)
def test_same_as_ansible_inventory(oracle, case):
    want = oracle[case]
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
