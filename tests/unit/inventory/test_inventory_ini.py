"""The INI reader (provision.inventory.ini) on texts written here: values as Ansible reads them,
words as shlex splits them, sections declared in any order, and each refusal word for word."""
import pytest

from provision.inventory import ini
from provision.inventory.errors import InventoryError
from provision.inventory.graph import InventoryData


def parsed(text: str) -> InventoryData:
    data = InventoryData()
    ini.parse(data, "hosts.ini", text)
    data.finish("hosts.ini")
    return data


@pytest.mark.parametrize("text, value", [
    ("web", "web"), ("yes", "yes"), ("true", "true"), ("True", True), ("False", False), ("None", None),
    ("Trueish", "Trueish"), ("42", 42), ("-1.5", -1.5), ("'quoted'", "quoted"), ('"a b"', "a b"),
    ("[1, 'a']", [1, "a"]), ("(1, 2)", [1, 2]), ("{'k': (1,)}", {"k": [1]}), ("{1, 1}", [1]),
    ("...", "..."), ("1j", "1j"), ("b'x'", "x"), ("/etc/x", "/etc/x"), ("[1", "[1"), ("1 +", "1 +"),
])
def test_values_as_ansible_reads_them(text, value):
    ini._literals.clear()       # remembered per text: computed again here
    assert ini.parse_value(text) == value
    assert type(ini.parse_value(text)) is type(value)


@pytest.mark.parametrize("line, words", [
    ("a b\tc", ["a", "b", "c"]),
    ("  a  ", ["a"]),
    ("a='x y' b=\"q \\\" r\\\\\" c", ["a=x y", 'b=q " r\\', "c"]),
    ("a\\ b c # comment 'x", ["a b", "c"]),
    ("a#b", ["a"]),
    ("''", [""]),
    ("x=''y", ["x=y"]),
    ("", []),
    ('x="" Xa', ["x=", "Xa"]),
])
def test_words_as_shlex_splits_them(line, words):
    assert ini.split_words(line) == words


@pytest.mark.parametrize("line, problem", [("a 'b", "No closing quotation"), ('a "b', "No closing quotation"),
                                           ("a \\", "No escaped character")])
def test_unfinished_words(line, problem):
    with pytest.raises(ValueError, match=f"^{problem}$"):
        ini.split_words(line)


TEXT = """\
# comment
; other comment
lonely ansible_port=2200
[web:vars]   # vars before the group
http_port=8080
[edge:children]
web
new
[web]
web[1:2].test role=front ansible_host=10.0.0.1
[new]
n1:2222
[new:vars]
flag = True
[lb:children] # comment
edge
"""


def test_sections_in_any_order():
    data = parsed(TEXT)
    assert data.hosts["lonely"].groups == ["ungrouped"] and data.hosts["lonely"].vars == {"ansible_port": 2200}
    assert data.groups["web"].vars == {"http_port": 8080} and data.groups["web"].origins == {"http_port": "hosts.ini:5"}
    assert data.groups["edge"].children == ["web", "new"] and data.groups["lb"].children == ["edge"]
    assert data.hosts["web1.test"].vars == {"role": "front", "ansible_host": "10.0.0.1"}
    assert data.hosts["web2.test"].origins == {"role": "hosts.ini:10", "ansible_host": "hosts.ini:10"}
    assert data.hosts["n1"].vars == {"ansible_port": 2222} and data.groups["new"].vars == {"flag": True}
    assert data.members("lb") == ["web1.test", "web2.test", "n1"]


def test_children_named_before_their_parents_are_declared():
    data = parsed("[a:children]\nb\n[b:children]\nc\n[c]\nh1\n")
    assert data.groups["a"].children == ["b"] and data.groups["b"].children == ["c"]
    assert data.members("a") == ["h1"]
    data = parsed("[a:children]\nc\n[b:children]\nc\n[c]\nh1\n")
    assert data.groups["c"].parents == ["a", "b"]


@pytest.mark.parametrize("text, message", [
    ("[web:hosts]\n[web:colour]\n",
     "hosts.ini:2: section [web:colour] has an unknown type 'colour' (hosts, children or vars)"),
    ("[web server]\n", "hosts.ini:1: invalid section '[web server]' (no spaces or ':' inside a group name)"),
    ("[web:vars]\nx\n[web]\n", "hosts.ini:2: [web:vars]: expected key=value, got 'x'"),
    ("[a:children]\nb c\n", "hosts.ini:2: [a:children]: expected a group name, got 'b c'"),
    ("[a:vars]\nx=1\n", "hosts.ini:1: section [a:vars] is for a group that is never declared"),
    ("[a:children]\nb\n[c:children]\nb\n", "hosts.ini:2: section [c:children] names group 'b', which is never declared"),
    ("h1 'x\n", "hosts.ini:1: cannot parse host line: No closing quotation"),
    ("h1: a=1\n", "hosts.ini:1: host 'h1:': a trailing ':' must be followed by a port"),
    ("---\n", "hosts.ini:1: '---' is not a host (is this a YAML file?)"),
    ("h1 a=1 b\n", "hosts.ini:1: host 'h1': expected key=value, got 'b'"),
])
def test_refusals_word_for_word(text, message):
    with pytest.raises(InventoryError) as err:
        parsed(text)
    assert str(err.value) == message


def test_a_value_keeps_its_own_equals_signs_and_a_group_is_not_its_own_child():
    data = parsed("[web]\nh1 q=a=b\n[web:vars]\nurl = http://a/?q=1&r=2\n")
    assert data.groups["web"].vars == {"url": "http://a/?q=1&r=2"} and data.hosts["h1"].vars == {"q": "a=b"}
    with pytest.raises(InventoryError) as err:
        parsed("[a:children]\na\n")
    assert str(err.value) == "hosts.ini:2: group 'a': cannot be a child of itself"


def test_a_group_declared_after_its_vars_is_fine_and_a_comment_line_is_nothing():
    data = parsed("[a:vars]\nx=1\n[a]\nh # no vars\n\n  # indented comment\n")
    assert data.groups["a"].vars == {"x": 1} and data.hosts["h"].vars == {}
    assert parsed("h1 \n").hosts["h1"].groups == ["ungrouped"]
