"""The package's layers, read from the source: imports run one way, down (docs/architecture.md)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The core reads, plans and runs; it never reaches up to the job or the commands on top.
CORE = ("transport", "acme_client", "inventory", "facts", "resources", "apply", "engine", "audit", "report",
        "balancer", "sites", "tls", "wheels", "appwheels", "releases", "platforms", "render", "openssh", "errors",
        "data", "interrupt", "syntax", "shards")
ABOVE_CORE = ("roles", "deploy", "workers", "rollout", "certificates", "ops", "verify", "cli", "lab")
DEV = ("bench", "tests")        # dev tooling and test support live beside the product, never in it


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = ROOT) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted((root / "provision").rglob("*.py"))}


def resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` names (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, ast.AST]]:
    """(imported module, node) for every import in the file; `from P import m` names module P.m
    when P.m is a module of ours, else P."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = resolve(name, path.name == "__init__.py", node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((sub if sub in known else target, node))
    return found


def graph(known: dict[str, Path]) -> dict[str, set[str]]:
    """Our modules -> our modules they import (a package's own __init__ is implied, not an edge)."""
    edges = {}
    for name, path in known.items():
        edges[name] = {target for target, _ in imports(name, path, known)
                       if target in known and target != name and not name.startswith(target + ".")}
    return edges


def layer(module: str) -> str:
    """provision.ops.status -> ops; provision.engine -> engine."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layering_violations(known: dict[str, Path], root: Path = ROOT) -> list[str]:
    found = []
    for name, path in known.items():
        for target, node in imports(name, path, known):
            top = target.split(".")[0]
            if top in DEV:
                found.append(f"{path.relative_to(root)}:{node.lineno}: the product imports dev code {target}")
            if target.startswith("provision.") and layer(name) in CORE and layer(target) in ABOVE_CORE:
                found.append(f"{path.relative_to(root)}:{node.lineno}: core {name} imports {target}, "
                             f"a layer above it")
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def explained(lines: list[str], lineno: int) -> bool:
    """An import line has a comment, or opens (or continues) a block of imports under a comment line."""
    if "#" in lines[lineno - 1]:
        return True
    k = lineno - 2
    while k >= 0 and lines[k].strip().startswith(("import ", "from ")):
        k -= 1
    return k >= 0 and lines[k].strip().startswith("#")


def unexplained_local_imports(path: Path, root: Path = ROOT) -> list[str]:
    """Imports inside a function without a comment saying why (on the line, or above its block)."""
    lines = path.read_text().splitlines()
    found = []
    for fn in ast.walk(ast.parse("\n".join(lines), str(path))):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not explained(lines, node.lineno):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return sorted(set(found))


def test_the_core_never_imports_a_layer_above_it_and_the_product_never_imports_dev_code():
    assert layering_violations(modules()) == []


def test_no_import_cycle_among_the_package_modules():
    assert cycles(graph(modules())) == []


def test_every_import_inside_a_function_says_why():
    assert [line for path in modules().values() for line in unexplained_local_imports(path)] == []


# -- the checks themselves catch what they are for -------------------------------------------------

def write(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return modules(root)


def test_an_import_of_roles_added_to_the_engine_is_a_violation(tmp_path):
    engine = (ROOT / "provision" / "engine.py").read_text()
    known = write(tmp_path, {"provision/__init__.py": "", "provision/roles/__init__.py": "",
                              "provision/roles/proxy.py": "",
                              "provision/engine.py": engine + "\nfrom .roles import proxy\n"})
    assert [v.split(": ", 1)[1] for v in layering_violations(known, tmp_path)] == \
        ["core provision.engine imports provision.roles.proxy, a layer above it"]


def test_a_cycle_through_two_modules_is_found(tmp_path):
    known = write(tmp_path, {"provision/__init__.py": "", "provision/a.py": "from . import b\n",
                              "provision/b.py": "from .a import x\n", "provision/c.py": "from . import a\n"})
    assert cycles(graph(known)) == [["provision.a", "provision.b"]]


def test_the_product_importing_the_bench_is_a_violation(tmp_path):
    known = write(tmp_path, {"provision/__init__.py": "", "provision/deploy.py": "from bench import speed\n"})
    assert len(layering_violations(known, tmp_path)) == 1


def test_a_local_import_needs_its_reason(tmp_path):
    known = write(tmp_path, {"provision/x.py": "def f():\n    x = 1\n    import json\n\n\ndef g():\n"
                                                "    # lazy: only --json needs it\n    import json\n    import csv\n"})
    assert unexplained_local_imports(known["provision.x"], tmp_path) == ["provision/x.py:3: import json"]
