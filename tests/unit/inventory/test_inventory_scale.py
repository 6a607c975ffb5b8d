"""Loading stays linear: big inventories and pathological nesting load in time proportional to
their size, or are refused with one line. The figures are printed (run with -s to see them);
nothing here asserts a time."""
import time

import pytest

from provision.inventory import InventoryError, load, read


def timed(what: str, func):
    """Prints the wall time, and the CPU time, which a busy machine disturbs less."""
    start, cpu = time.perf_counter(), time.process_time()
    try:
        result = func()
    finally:
        print(f"\n{what}: {time.perf_counter() - start:.3f} s (CPU {time.process_time() - cpu:.3f} s)", end="")
    return result


def address(i: int) -> str:
    return f"10.{2 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}"


@pytest.mark.parametrize("with_apps", [False, True], ids=["ansible_host", "ansible_host+app"])
def test_10000_hosts_ini_and_yaml(tmp_path, with_apps):
    """10,000 backends, each with its address (and an app, which makes 13 YAML nodes per host)."""
    ini_app = " apps=\"[{'name': 'a', 'port': 8080, 'message': 'm'}]\"" if with_apps else ""
    yaml_app = ", apps: [{name: a, port: 8080, message: m}]" if with_apps else ""
    ini = tmp_path / "hosts"
    ini.write_text("[proxies]\nproxy ansible_host=10.1.0.1\n[backends]\n" + "".join(
        f"web{i} ansible_host={address(i)}{ini_app}\n" for i in range(10_000)))
    yml = tmp_path / "hosts.yml"
    yml.write_text("all:\n  children:\n    proxies:\n      hosts:\n        proxy: {ansible_host: 10.1.0.1}\n"
                   "    backends:\n      hosts:\n" + "".join(
                       f"        web{i}: {{ansible_host: {address(i)}{yaml_app}}}\n" for i in range(10_000)))
    for path in (ini, yml):
        inv = timed(f"10,000 hosts ({'with' if with_apps else 'no'} apps), {path.name}", lambda: load(path))
        assert len(inv.group("backends")) == 10_000


def test_20000_hosts_in_many_groups_is_not_quadratic(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("".join(f"[g{g}]\n" + "".join(f"h{g}-{i}\n" for i in range(200)) for g in range(100))
                    + "[top:children]\n" + "".join(f"g{g}\n" for g in range(100)))
    loaded = timed("20,000 hosts in 100 groups", lambda: read(path))
    assert len(loaded.data.hosts) == 20_000


def test_diamond_40_deep(tmp_path):
    """Each level has two groups, both children of both groups above: 2^40 paths, 80 groups."""
    lines = []
    for level in range(40):
        for side in "ab":
            lines += [f"[l{level}{side}:children]", f"l{level + 1}a", f"l{level + 1}b", f"[l{level}{side}:vars]",
                      f"v{level}={side}"]
    lines += ["[l40a]", "bottom", "[l40b]", "bottom"]
    path = tmp_path / "hosts"
    path.write_text("\n".join(lines) + "\n")
    loaded = timed("diamond of groups 40 deep", lambda: read(path))
    assert loaded.vars["bottom"]["v0"] == "b"      # same depth: sorted by name, b after a


def test_yaml_aliases_of_children_bodies_14_levels(tmp_path):
    text = "g0: &g0 {hosts: {h: }}\n"
    for level in range(1, 15):
        text += f"g{level}: &g{level} {{children: {{a{level}: *g{level - 1}, b{level}: *g{level - 1}}}}}\n"
    path = tmp_path / "hosts.yml"
    path.write_text(text)
    loaded = timed("YAML aliases of children bodies, 14 levels", lambda: read(path))
    assert "h" in loaded.data.hosts


@pytest.mark.parametrize("fmt", ["yaml", "json", "ini"])
def test_1200_levels_of_nesting(tmp_path, fmt):
    """Loads, or is refused with one line naming the file; never a RecursionError."""
    if fmt == "yaml":
        path = tmp_path / "hosts.yml"
        path.write_text("".join(f"{'  ' * (2 * i)}g{i}:\n{'  ' * (2 * i + 1)}children:\n" for i in range(1200))
                        + f"{'  ' * 2400}last: {{hosts: {{h: }}}}\n")
    elif fmt == "json":
        path = tmp_path / "hosts.json"
        path.write_text("".join(f'{{"g{i}": {{"children": ' for i in range(1200)) + "{}" + "}}" * 1200)
    else:
        path = tmp_path / "hosts"
        path.write_text("".join(f"[g{i}:children]\ng{i + 1}\n" for i in range(1200)) + "[g1200]\nh\n")
    try:
        loaded = timed(f"1,200 levels of nesting ({fmt})", lambda: read(path))
    except InventoryError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        print(f" -> refused: {exc}", end="")
    else:
        assert fmt == "ini" and loaded.data.groups["g1200"].depth == 1201


def test_huge_range_is_refused_in_one_line(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("[web]\nweb[0:99999999]\n")
    with pytest.raises(InventoryError, match="makes more than 100000 hosts"):
        timed("web[0:99999999]", lambda: read(path))


def test_the_garbage_collector_is_back_on_after_a_load_or_a_refusal(tmp_path):
    import gc
    good, bad = tmp_path / "hosts", tmp_path / "bad.yml"
    good.write_text("[web]\nweb1\n")
    bad.write_text("all:\n  hosts:\n    a:\n    a:\n")
    assert gc.isenabled()
    load(good)
    with pytest.raises(InventoryError, match="given twice"):
        read(bad)
    assert gc.isenabled()
    gc.disable()
    try:
        load(good)
        assert not gc.isenabled()       # a caller's own choice is kept
    finally:
        gc.enable()
