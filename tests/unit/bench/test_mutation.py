"""invoke mutate's pure parts: scores from mutmut's exit codes, equivalent mutants guarded by their
text, the report."""
from pathlib import Path

from bench import mutation as quality

DIFF = "--- a\n+++ a\n@@ -1 +1 @@\n-    x = f(a, b)\n+    x = f(None, b)\n"


def test_score_counts_kills_timeouts_survivors_and_sets_equivalents_aside():
    codes = {"m.a": 1, "m.b": 0, "m.c": 0, "m.d": 33, "m.e": 36, "m.f": None}
    eq = {"m.c": ("f(None, b)", "a is unused"), "m.b": ("not on the line", "stale")}
    result = quality.score(codes, {"m.b": DIFF, "m.c": DIFF, "m.d": DIFF}, eq)
    assert (result["mutants"], result["killed"], result["unchecked"]) == (6, 2, 1)
    assert [s["name"] for s in result["survived"]] == ["m.b", "m.d"]
    assert [s["status"] for s in result["survived"]] == ["survived", "no tests"]
    assert result["equivalent"] == [{"name": "m.c", "reason": "a is unused",
                                     "diff": ["-    x = f(a, b)", "+    x = f(None, b)"]}]
    assert result["score"] == 2 / 4


def test_markdown_shows_every_module_target_named_table_and_survivors():
    results = {"modules": {"apply": {"mutants": 10, "killed": 9, "survived": [
        {"name": "provision.apply.x_f__mutmut_1", "status": "survived", "diff": ["-a", "+b`c"]}],
        "equivalent": [{"name": "provision.apply.x_f__mutmut_2", "reason": "why", "diff": []}], "score": 1.0,
        "date": "d"}},
        "named": {"date": "d", "rows": [{"mutation": "m", "file": "f.py", "killed_by": "tests/unit/t.py::x"},
                                        {"mutation": "n", "file": "g.py", "killed_by": None}]}}
    text = quality.markdown(results)
    assert "| apply | 10 | 9 | 1 | 1 | 0 | 100.0% | pass | d |" in text
    assert "| inventory | - | - | - | - | - | - | not run | - |" in text
    assert "| m | f.py | `tests/unit/t.py::x` |" in text and "| n | g.py | **survived** |" in text
    assert "- `provision.apply.x_f__mutmut_2`: why" in text
    assert "- `provision.apply.x_f__mutmut_1` (survived): `+b'c`" in text


def test_first_failure_from_pytest_output():
    out = "....F\nFAILED tests/unit/test_x.py::test_y - AssertionError: no\nERROR tests/unit/z.py\n"
    assert quality._first_failure(out) == "tests/unit/test_x.py::test_y"
    assert quality._first_failure("5 passed") is None


def test_equivalent_entries_name_pure_modules():
    pure_files = {f for m in quality.PURE_MODULES for f in quality.module_files(m)}
    for name, (text, reason) in quality.EQUIVALENT.items():
        assert quality.source_of(name) in pure_files and text and reason, name


def test_patterns_mark_a_kind_of_mutant_equivalent_when_every_added_line_matches():
    patterns = quality.EQUIVALENT_PATTERNS["roles.proxy"]
    tls = "-    x = setting(host, options, 'tls')\n+    x = setting(host, None, 'tls')\n"
    mode = "-    x = setting(host, options, 'proxy_mode')\n+    x = setting(host, None, 'proxy_mode')\n"
    assert quality.is_equivalent("n", tls, {}, patterns) == quality._SETTING
    assert quality.is_equivalent("n", mode, {}, patterns) is None
    assert quality.is_equivalent("n", "", {}, patterns) is None


def test_a_package_module_is_all_its_files_and_mutants_map_to_their_file():
    files = quality.module_files("inventory")
    assert Path("provision/inventory/validate.py") in files and Path("provision/inventory/ini.py") in files
    assert all(f.suffix == ".py" and f.parts[:2] == ("provision", "inventory") for f in files)
    assert quality.module_files("roles.proxy") == [Path("provision/roles/proxy.py")]
    assert quality.source_of("provision.inventory.validate.x_check__mutmut_3") == Path("provision/inventory/validate.py")
    assert quality.source_of("provision.roles.proxy.x_resources__mutmut_77") == Path("provision/roles/proxy.py")


def test_every_pure_module_exists_and_mutmut_is_told_to_mutate_it():
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(quality.ROOT / "setup.cfg")
    patterns = cfg["mutmut"]["only_mutate"].split()
    import fnmatch
    for m in quality.PURE_MODULES:
        files = quality.module_files(m)
        assert files and all((quality.ROOT / f).is_file() for f in files), m
        assert all(any(fnmatch.fnmatch(str(f), p) for p in patterns) for f in files), m


def test_one_file_of_a_package_scores_into_the_package():
    assert quality.module_of("inventory") == ("inventory", None)
    assert quality.module_of("inventory.validate") == ("inventory", Path("provision/inventory/validate.py"))
    assert quality.module_of("balancer.manager") == ("balancer.manager", None)
    import pytest
    from provision.errors import UserError
    for bad in ("transport", "inventory.nope", "ops.session"):
        with pytest.raises(UserError, match=f"^--module: '{bad}' is not a pure module"):
            quality.module_of(bad)


def test_mutant_names_to_files_functions_and_patterns():
    assert quality.source_of("provision.inventory.x_load__mutmut_1") == Path("provision/inventory/__init__.py")
    assert quality.function_of("provision.ops.status.x_interpret__mutmut_3") == "interpret"
    assert quality.function_of("provision.ops.status.x__plan_text__mutmut_3") == "_plan_text"
    assert quality.function_of("provision.balancer.drain.x\u01c1ProxyOutcome\u01c1drained_before__mutmut_1") == \
        "ProxyOutcome.drained_before"
    assert quality.mutant_pattern(Path("provision/inventory/__init__.py")) == "provision.inventory.x*"
    assert quality.mutant_pattern(Path("provision/inventory/ini.py")) == "provision.inventory.ini.x*"
    assert quality._patterns("balancer.drain", [Path("provision/balancer/drain.py")], False) == [
        "provision.balancer.drain.x_member_urls*", "provision.balancer.drain.x_balanced*",
        "provision.balancer.drain.x\u01c1ProxyOutcome\u01c1drained_before*",
        "provision.balancer.drain.x\u01c1ProxyOutcome\u01c1status*"]


def test_a_mixed_module_scores_only_its_pure_functions():
    names = ["provision.ops.status.x_interpret__mutmut_1", "provision.ops.status.x_collect__mutmut_1",
             "provision.ops.status.x_main__mutmut_2", "provision.ops.status.x_plain_lines__mutmut_9"]
    assert quality._scored("ops.status", names) == [names[0], names[3]]
    assert quality._scored("sites", names) == names
    for module, functions in quality.PURE_FUNCTIONS.items():
        assert module in quality.PURE_MODULES
        import importlib
        mod = importlib.import_module(f"provision.{module}")
        for f in functions:
            owner, _, name = f.rpartition(".")
            assert hasattr(getattr(mod, owner) if owner else mod, name), f


def test_unchecked_mutants_are_counted_apart_from_the_score():
    codes = {"m.a": 1, "m.b": None, "m.c": None, "m.d": 0}
    result = quality.score(codes, {"m.d": DIFF}, {})
    assert (result["mutants"], result["killed"], result["unchecked"], result["score"]) == (4, 1, 2, 0.5)
    text = quality.markdown({"modules": {"sites": {**result, "date": "d", "minutes": 3.5,
                                                   "seconds_per_mutant": 0.71}}})
    assert "| sites | 4 | 1 | 1 | 0 | 2 | 50.0% | FAIL | d | 3.5 | 0.71 |" in text
    assert "| apply | - | - | - | - | - | - | not run | - | - | - |" in text


def test_each_named_mutation_still_finds_its_line_and_the_last_run_killed_all_twelve():
    import os
    import pytest
    if "MUTANT_UNDER_TEST" in os.environ:
        pytest.skip("under mutmut the sources hold every mutant")
    assert len(quality.NAMED) == 12
    for what, rel, old, new in quality.NAMED:
        assert (quality.ROOT / rel).read_text().count(old) == 1 and old != new, what
    rows = quality.load_results()["named"]["rows"]
    assert [r["mutation"] for r in rows] == [n[0] for n in quality.NAMED]
    assert all(r["killed_by"] and r["killed_by"].startswith("tests/unit/") for r in rows), rows


def test_module_option_takes_a_prefix_or_a_list():
    ops = [(m, None) for m in quality.PURE_MODULES if m.startswith("ops.")]
    assert len(ops) == 3 and quality.targets_of("ops") == ops
    balancer = [(m, None) for m in quality.PURE_MODULES if m.startswith("balancer.")]
    assert len(balancer) == 3 and quality.targets_of("provision/balancer") == balancer
    assert quality.targets_of("sites, inventory.ini") == [("sites", None),
                                                         ("inventory", Path("provision/inventory/ini.py"))]
    assert quality.targets_of("provision/sites") == [("sites", None)]
    assert quality.targets_of("provision/inventory/ini.py") == [("inventory", Path("provision/inventory/ini.py"))]


def test_the_module_list_is_setup_cfgs_only_mutate():
    cfg = "[mutmut]\nonly_mutate =\n    provision/inventory/*.py\n    provision/facts.py\n    provision/roles/proxy.py\n"
    assert quality.pure_modules(cfg) == ("inventory", "facts", "roles.proxy")
