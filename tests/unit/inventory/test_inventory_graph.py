"""The group graph (provision.inventory.graph) and the YAML reader that fills it, on trees built
here: implicit groups, depths, ancestries, member order, and each refusal word for word."""
import pytest

from provision.inventory import yamlfile
from provision.inventory.errors import InventoryError
from provision.inventory.graph import InventoryData, check_plain_name, control_character


def parsed(tree) -> InventoryData:
    data = InventoryData()
    yamlfile.parse(data, "inv.yml", tree)
    data.finish("inv.yml")
    return data


TREE = {
    "all": {"vars": {"x": 1}, "children": {
        "web": {"hosts": {"web[1:2]:2222": {"role": "w"}}, "vars": {"ansible_group_priority": "3", "y": 2}},
        "lb": {"hosts": "proxy", "children": {"web": None, "edge": {"hosts": {"edge1": None}}}}}},
    "solo": {"hosts": {"web1": {"z": 3}, "[::1]:22": None}},
    "loose": {"hosts": {"lonely": None}},
    "empty": None,
}


def test_groups_hosts_and_variables_as_declared():
    data = parsed(TREE)
    assert list(data.groups) == ["all", "ungrouped", "web", "lb", "edge", "solo", "loose", "empty"]
    g = data.groups
    assert (g["web"].priority, g["web"].vars, g["web"].origins) == (3, {"y": 2}, {"y": "inv.yml"})
    assert g["all"].vars == {"x": 1} and g["lb"].priority == 1
    assert g["web"].parents == ["all", "lb"] and g["lb"].children == ["web", "edge"]
    assert g["all"].children == ["ungrouped", "web", "lb", "solo", "loose", "empty"]
    assert (g["all"].depth, g["lb"].depth, g["web"].depth, g["edge"].depth, g["solo"].depth) == (0, 1, 2, 2, 1)
    assert data.hosts["web1"].vars == {"ansible_port": 2222, "role": "w", "z": 3}
    assert data.hosts["web1"].groups == ["web", "solo"] and data.hosts["web1"].where == "inv.yml"
    assert data.hosts["::1"].vars == {"ansible_port": 22}
    assert data.hosts["proxy"].vars == {} and data.hosts["proxy"].groups == ["lb"]
    assert data.ancestors["edge"] == {"lb", "all"} and data.ancestors["all"] == frozenset()
    assert data.host_groups("edge1") == {"edge", "lb", "all"}
    assert data.members("lb") == ["proxy", "web1", "web2", "edge1"]
    assert data.members("all") == ["web1", "web2", "proxy", "edge1", "::1", "lonely"]
    assert g["ungrouped"].hosts == [] and data.members("empty") == []


def test_a_host_only_in_all_is_ungrouped_and_leaves_ungrouped_when_grouped():
    data = InventoryData()
    data.add_host("a", "all", "w")
    data.add_host("b", "ungrouped", "w")
    data.add_group("g", "w")
    data.add_host("b", "g", "w")
    data.add_host("c", None, "w", 2200)
    data.finish("w")
    assert data.hosts["a"].groups == ["all", "ungrouped"] and data.hosts["b"].groups == ["g"]
    assert data.groups["ungrouped"].hosts == ["a", "c"] and data.hosts["c"].vars == {"ansible_port": 2200}


def test_a_port_counts_where_the_host_first_appears():
    data = InventoryData()
    data.add_group("g", "w")
    data.add_host("a", "g", "first", 2201)
    data.add_host("a", "g", "second", 2202)
    assert data.hosts["a"].vars == {"ansible_port": 2201} and data.hosts["a"].origins == {"ansible_port": "first"}
    assert data.groups["g"].hosts == ["a"] and data.hosts["a"].where == "first"


@pytest.mark.parametrize("tree, message", [
    ({}, "inv.yml: the inventory is empty"),
    (["web1"], "inv.yml: top level must be a mapping of groups, got list"),
    ({"plugin": "aws_ec2"}, "inv.yml: inventory plugin configuration (plugin: 'aws_ec2') is not supported; give the "
                            "hosts as INI, YAML, JSON or a script"),
    ({"web": ["web1"]}, "inv.yml: group 'web': must be a mapping with hosts, children or vars, got list"),
    ({"web": {"host": {"web1": None}}},
     "inv.yml: group 'web': unknown key 'host' (expected hosts, children or vars)"),
    ({"web": {"hosts": ["web1"]}}, "inv.yml: group 'web': field 'hosts' must be a mapping, got list"),
    ({"web": {"hosts": {"web1": "x"}}}, "inv.yml: host 'web1': must be a mapping of variables, got str"),
    ({"web": {"vars": {"ansible_group_priority": "high"}}},
     "inv.yml: group 'web': field 'ansible_group_priority' must be an integer, got 'high'"),
    ({"web": {"vars": {"ansible_group_priority": None}}},
     "inv.yml: group 'web': field 'ansible_group_priority' must be an integer, got None"),
    ({"web": {"children": {"web": None}}}, "inv.yml: group 'web': cannot be a child of itself"),
    ({"a": {"children": {"b": {"children": {"c": {"children": {"a": None}}}}}}},
     "inv.yml: groups 'a', 'b', 'c': a cycle in 'children' (a group is its own ancestor)"),
    ({"web/x": None}, "inv.yml: group 'web/x': must be a plain name (no '/', '\\', '.' or '..'), since it names a "
                      "file in group_vars/ or host_vars/"),
    ({"g": {"hosts": {"..": None}}}, "inv.yml: host '..': must be a plain name (no '/', '\\', '.' or '..'), since it "
                                     "names a file in group_vars/ or host_vars/"),
    ({" web": None}, "inv.yml: group ' web': name is empty or has surrounding spaces"),
    ({"we\u200bb": None}, "inv.yml: group 'we\\u200bb': name contains the control character '\\u200b'"),
])
def test_refusals_word_for_word(tree, message):
    with pytest.raises(InventoryError) as err:
        parsed(tree)
    assert str(err.value) == message


def test_children_deeper_than_the_bound_are_refused():
    tree = body = {}
    for i in range(yamlfile.MAX_DEPTH):
        body["children"] = {f"g{i}": {}}
        body = body["children"][f"g{i}"]
    parsed({"top": tree})
    body["children"] = {"last": None}
    with pytest.raises(InventoryError) as err:
        parsed({"top": tree})
    assert str(err.value) == "inv.yml: group 'last': children nested more than 200 levels deep"


def test_an_aliased_body_is_read_once_per_group():
    shared = {"hosts": {"h1": {"v": 1}}}
    data = parsed({"a": shared, "b": {"children": {"a": shared, "c": shared}}})
    assert data.groups["a"].hosts == ["h1"] and data.groups["c"].hosts == ["h1"]
    assert data.hosts["h1"].groups == ["a", "c"]
    assert yamlfile.looks_like({"all": {}}) and not yamlfile.looks_like({"plugin": "x"})
    assert not yamlfile.looks_like(["a"])


def test_names_and_control_characters():
    assert check_plain_name("host", 10, "w") == "10"
    assert control_character("ok\t") == "\t" and control_character("fine") is None
    assert control_character("a\u2029") == "\u2029" and control_character("é") is None
    with pytest.raises(InventoryError, match=r"^w: host '': name is empty or has surrounding spaces$"):
        check_plain_name("host", "", "w")
    with pytest.raises(InventoryError, match=r"^w: group '\.': must be a plain name"):
        check_plain_name("group", ".", "w")
    with pytest.raises(InventoryError, match=r"^w: group 'a\\\\b': must be a plain name"):
        check_plain_name("group", "a\\b", "w")
