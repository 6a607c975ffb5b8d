"""Reading inventory files (provision.inventory.files): each refusal word for word, with the line
it names, and YAML/JSON chosen by suffix."""
import os

import pytest

from provision.inventory import files
from provision.inventory.errors import InventoryError


def refusal(call, *args) -> str:
    with pytest.raises(InventoryError) as err:
        call(*args)
    return str(err.value)


def test_reading_refusals(tmp_path):
    assert refusal(files.read_text, tmp_path / "nope") == f"{tmp_path}/nope: no such inventory file"
    assert refusal(files.read_text, tmp_path) == f"{tmp_path}: is a folder, expected a file"
    bad = tmp_path / "bad.ini"
    bad.write_bytes(b"a\nb\n\xff\n")
    assert refusal(files.read_text, bad) == f"{bad}:3: not UTF-8 (byte 0xff)"
    bad.write_bytes(b"\xc3")
    assert refusal(files.read_text, bad) == f"{bad}:1: not UTF-8 (byte 0xc3)"
    if os.geteuid() != 0:
        bad.chmod(0)
        assert refusal(files.read_text, bad) == f"{bad}: cannot read: Permission denied"


@pytest.mark.parametrize("text, message", [
    ("a: 1\nb: 2\na: 3\n", "inv.yml:3: key 'a' is given twice in one mapping (lines 1 and 3)"),
    ("all:\n  hosts:\n    h1:\n    h1:\n", "inv.yml:4: key 'h1' is given twice in one mapping (lines 3 and 4)"),
    ("a: [1\n", "inv.yml:2: did not find expected ',' or ']'"),
    ("a: b: c\n", "inv.yml:1: mapping values are not allowed in this context"),
    ("a: *nope\n", "inv.yml:1: found undefined alias"),
    ("a: 1\n---\nb: 2\n", "inv.yml:2: but found another document"),
])
def test_yaml_refusals_name_the_line(text, message):
    assert refusal(files.load_yaml, "inv.yml", text) == message


def test_yaml_keeps_merge_keys_and_same_text_with_other_tags():
    assert files.load_yaml("x", "base: &b {a: 1}\nuse:\n  <<: *b\n  <<: *b\n  c: 2\n") == {
        "base": {"a": 1}, "use": {"a": 1, "c": 2}}
    assert files.load_yaml("x", "1: a\n'1': b\n") == {1: "a", "1": "b"}
    assert files.load_yaml("x", "") is None


def test_json_refusals_and_suffix(tmp_path):
    assert refusal(files.load_json, "inv.json", '{"a": 1, "a": 2}') == "inv.json: key 'a' is given twice in one " \
                                                                        "JSON object"
    assert refusal(files.load_json, "inv.json", '{\n"a": }') == "inv.json:2: invalid JSON: Expecting value"
    assert refusal(files.load_json, "inv.json", "[" * 100000) == "inv.json: nested too deeply to read"
    j = tmp_path / "x.json"
    j.write_text('{"a": 1}')
    assert files.load_data(j) == {"a": 1}
    y = tmp_path / "x.yml"
    y.write_text("a: 1\na: 2\n")
    assert refusal(files.load_data, y) == f"{y}:2: key 'a' is given twice in one mapping (lines 1 and 2)"
    assert files.load_data(j, '{"b": 2}') == {"b": 2}
    assert refusal(files.load_data, tmp_path / "x.json", "a: 1") == \
        f"{tmp_path}/x.json:1: invalid JSON: Expecting value"
