"""invoke mutate's pure parts: scores from mutmut's exit codes, equivalent mutants guarded by their
text, the report."""
from pathlib import Path

from provision import quality

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
    for name, (text, reason) in quality.EQUIVALENT.items():
        assert name.split(".x")[0].removeprefix("provision.") in quality.PURE_MODULES and text and reason


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
