"""Start-up: the deploy path imports only what every run needs; the rest (SSH, templates, YAML,
TLS, rich, http.client, multiprocessing) is imported when a run reaches it. Measured in a fresh
interpreter with `python -X importtime`, as a user's installed copy runs: bytecode cached (in a
folder of the test's own, whatever PYTHONDONTWRITEBYTECODE says). The time is printed, not
asserted (a shared machine's timings are figures, not pass/fail): `invoke bench` records it too."""
import ast
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.startup import import_time

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_PATH = "provision.deploy"
# Imported when a run needs them, never by importing the deploy path.
LATER = ("paramiko", "fabric", "invoke", "jinja2", "yaml", "cryptography", "nacl", "rich", "http.client",
         "email.parser", "ssl", "multiprocessing", "difflib", "html", "uuid", "packaging", "acme", "requests",
         "provision.rollout", "provision.balancer.drain", "provision.inventory.yamlload", "provision.workers")


def test_the_deploy_path_imports_nothing_a_run_loads_later_and_its_time_is_printed(tmp_path):
    found = import_time(DEPLOY_PATH, runs=5, pycache=tmp_path / "pycache")
    ours = sorted(m for m in found.modules if m.startswith("provision"))
    print(f"\nimport {DEPLOY_PATH}: {len(found.modules)} modules ({len(ours)} of ours: {', '.join(ours)})")
    print(f"import {DEPLOY_PATH}: min {found.min_ms:.1f} ms, median {found.median_ms:.1f} ms over "
          f"{len(found.times_ms)} runs, bytecode cached (target <= 80 ms)")
    assert not [m for m in found.modules if m in LATER or m.split(".")[0] in LATER]
    assert DEPLOY_PATH in found.modules and "provision.engine" in found.modules


def test_a_dataclass_of_the_package_has_a_docstring():
    # dataclasses writes a missing one from inspect.signature: about 0.5 ms each at start-up
    bare = []
    for path in sorted((ROOT / "provision").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and not ast.get_docstring(node) and any(
                    "dataclass" in ast.unparse(d) for d in node.decorator_list):
                bare.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert bare == []


def test_import_time_reads_the_cumulative_time_of_the_module(tmp_path):
    found = import_time("json", runs=2, pycache=tmp_path / "pycache")
    assert "json" in found.modules and "json.decoder" in found.modules
    assert len(found.times_ms) == 2 and 0 < found.min_ms <= found.median_ms == statistics.median(found.times_ms)
