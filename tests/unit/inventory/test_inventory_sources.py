"""Sources (provision.inventory.sources) and inventory scripts (provision.inventory.script) on
files made here: folders read in name order, what is skipped, vars folders walked, scripts run,
and each refusal word for word."""
import pytest

from provision.inventory import script, sources
from provision.inventory.errors import InventoryError
from provision.inventory.graph import InventoryData


def refusal(call, *args) -> str:
    with pytest.raises(InventoryError) as err:
        call(*args)
    return str(err.value)


def executable(path, text):
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(0o755)
    return path


def test_folder_entries_in_name_order_skipping_what_ansible_skips(tmp_path):
    (tmp_path / "b.ini").write_text("[web]\nh2\n")
    (tmp_path / "a.yml").write_text("web:\n  hosts:\n    h1:\n")
    for skipped in (".hidden", "notes.md", "x.retry", "old~", "group_vars", "c.ini.orig"):
        (tmp_path / skipped).write_text("[web]\nnot-me\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c").write_text("[web]\nh3\n")
    data = InventoryData()
    assert sources.read(data, tmp_path) == tmp_path
    assert data.groups["web"].hosts == ["h1", "h2", "h3"]


def test_folders_nested_too_deep(tmp_path):
    folder = tmp_path
    for i in range(21):
        folder = folder / f"d{i}"
    folder.mkdir(parents=True)
    (folder / "h").write_text("h1\n")
    data = InventoryData()
    sources.read(data, tmp_path / "d0")
    assert list(data.hosts) == ["h1"]
    assert refusal(sources.read, InventoryData(), tmp_path) == \
        f"{tmp_path}/d0/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/d11/d12/d13/d14/d15/d16/d17/d18/d19/d20: inventory " \
        "folders nested more than 20 deep"


def test_host_list_and_missing_file(tmp_path):
    data = InventoryData()
    assert sources.read(data, "web1:2222, web2,,web1") == sources.Path.cwd()
    assert list(data.hosts) == ["web1", "web2"] and data.hosts["web1"].vars == {"ansible_port": 2222}
    assert data.hosts["web2"].groups == ["ungrouped"] and data.hosts["web2"].where == "-i 'web1:2222, web2,,web1'"
    assert refusal(sources.read, InventoryData(), tmp_path / "nope") == f"{tmp_path}/nope: no such inventory file"


def test_a_file_without_suffix_is_yaml_if_it_reads_as_yaml_else_ini(tmp_path):
    f = tmp_path / "hosts"
    f.write_text("[web]\nh1 a=1\n")
    data = InventoryData()
    sources.read_file(data, f)
    assert data.hosts["h1"].vars == {"a": 1}
    f.write_text("web:\n  hosts:\n    h1: {a: 2}\n")
    data = InventoryData()
    sources.read_file(data, f)
    assert data.hosts["h1"].vars == {"a": 2}
    f.write_text("web:\n  hosts: [\n")      # not YAML, and not INI either: the YAML error is the one shown
    assert refusal(sources.read_file, InventoryData(), f) == f"{f}:3: did not find expected node content"
    f.write_text("# c\nh1 a='x\n")          # INI-looking: the INI error
    assert refusal(sources.read_file, InventoryData(), f) == f"{f}:2: cannot parse host line: No closing quotation"


@pytest.mark.parametrize("text, ini", [("# c\n; c\n[web]\n", True), ("a=1\n", True), ("h1\n", True),
                                       ("web: x\n", False), ("", True), ("\n  \n", True), ("   web: {}\n", False)])
def test_looks_like_ini(text, ini):
    assert sources._looks_like_ini(text) is ini


def test_vars_folders_walked_in_name_order(tmp_path):
    g = tmp_path / "group_vars" / "web"
    (g / "deeper").mkdir(parents=True)
    (g / "b.yml").write_text("b: 1\n")
    (g / "a.json").write_text('{"a": 1}')
    (g / "deeper" / "c").write_text("c: 1\n")
    (g / "x.d").mkdir()
    (g / "x.d" / "no.yml").write_text("no: 1\n")
    for skipped in (".hidden.yml", "backup.yml~", "notes.txt"):
        (g / skipped).write_text("skip: 1\n")
    found = sources.VarsFiles().find(tmp_path, "group_vars", "web")
    assert [(p.relative_to(g).as_posix(), v) for p, v in found] == [
        ("a.json", {"a": 1}), ("b.yml", {"b": 1}), ("deeper/c", {"c": 1})]
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "h1.yaml").write_text("")
    (tmp_path / "host_vars" / "h2.yml").write_text("- 1\n")
    files = sources.VarsFiles()
    assert files.find(tmp_path, "host_vars", "h1") == [(tmp_path / "host_vars" / "h1.yaml", {})]
    assert files.find(tmp_path, "host_vars", "h3") == [] and files.find(tmp_path, "nothing", "h1") == []
    assert refusal(files.find, tmp_path, "host_vars", "h2") == \
        f"{tmp_path}/host_vars/h2.yml: must hold a mapping of variables, got list"


def test_a_script_is_run_with_list_then_host(tmp_path):
    s = executable(tmp_path / "inv.sh", 'if [ "$1" = --list ]; then echo \'{"web": ["h1", "h2"]}\'; '
                                       'else printf \'{"asked": "%s %s"}\' "$1" "$2"; fi\n')
    data = InventoryData()
    sources.read(data, s)
    assert data.hosts["h1"].vars == {"asked": "--host h1"} and data.hosts["h2"].vars == {"asked": "--host h2"}
    assert data.hosts["h1"].origins == {"asked": str(s)}


@pytest.mark.parametrize("body, problem", [
    ("echo oops >&2; echo 'two  lines' >&2; exit 3", "inventory script --list exited 3: oops two lines"),
    ("exit 1", "inventory script --list exited 1: (no output on stderr)"),
    ("printf '\\377'", "inventory script --list printed text that is not UTF-8"),
    ("echo '{\"web\": [}'", "inventory script output is not JSON (Expecting value at line 1): '{\"web\": [}'"),
])
def test_script_refusals_word_for_word(tmp_path, body, problem):
    s = executable(tmp_path / "inv.sh", body + "\n")
    assert refusal(sources.read, InventoryData(), s) == f"{s}: {problem}"


def test_script_stderr_tail_and_timeout(tmp_path, monkeypatch):
    s = executable(tmp_path / "inv.sh", f"printf 'x%.0s' $(seq 400) >&2; echo ' END' >&2; exit 2\n")
    assert refusal(script.run, s, "--list") == f"{s}: inventory script --list exited 2: {'x' * 296} END"
    slow = executable(tmp_path / "slow.sh", "exec sleep 5\n")
    monkeypatch.setattr(script, "TIMEOUT", 0.3)
    assert refusal(script.run, slow, "--host", "h1") == f"{slow}: inventory script --host h1 ran more than 0.3 s"
    plain = tmp_path / "plain.sh"
    plain.write_text("#!/bin/sh\n")
    assert refusal(script.run, plain) == f"{plain}: cannot run inventory script: Permission denied"
    stdin = executable(tmp_path / "stdin.sh", "cat; echo '{}'\n")
    assert script.run(stdin, "--list") == "{}\n"
