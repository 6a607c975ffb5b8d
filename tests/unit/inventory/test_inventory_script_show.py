"""Inventory-script JSON read into the graph (provision.inventory.script) and the three ways
`invoke inventory` prints it (provision.inventory.show), exactly."""
import json

import pytest

from provision.inventory import Loaded, script, show
from provision.inventory.errors import InventoryError
from provision.inventory.graph import InventoryData


def parsed(tree, host_vars_of=None) -> InventoryData:
    data = InventoryData()
    script.parse(data, "inv.sh", tree, host_vars_of)
    data.finish("inv.sh")
    return data


def test_list_json_shapes():
    assert script.is_list_json({"_meta": {}})
    assert script.is_list_json({"web": ["h1"]})
    assert script.is_list_json({"web": {"hosts": ["h1"]}})
    assert script.is_list_json({"web": {"children": ["db"]}})
    assert not script.is_list_json({"web": {"hosts": {"h1": None}}})
    assert not script.is_list_json({"web": {"children": {"db": None}}}) and not script.is_list_json(["web"])
    assert not script.is_list_json({"web": "h1"})


def test_groups_hosts_and_variables_from_list_json():
    tree = {"web": {"hosts": ["h1", "h2"], "vars": {"a": 1}, "children": ["db"]},
            "db": ["h3"], "solo": {"x": 2}, "empty": {"hosts": None},
            "_meta": {"hostvars": {"h1": {"v": 1}, "h3": {}}}}
    data = parsed(tree)
    assert data.groups["web"].hosts == ["h1", "h2"] and data.groups["web"].vars == {"a": 1}
    assert data.groups["web"].children == ["db"] and data.groups["db"].hosts == ["h3"]
    assert data.groups["solo"].hosts == ["solo"] and data.groups["solo"].vars == {"x": 2}
    assert data.hosts["h1"].vars == {"v": 1} and data.hosts["h2"].vars == {} and data.hosts["h1"].where == "inv.sh"
    assert data.hosts["h1"].origins == {"v": "inv.sh"} and data.groups["web"].origins == {"a": "inv.sh"}
    data = parsed({"_meta": {"hostvars": {}}, "web": {"vars": {"a": 1}}, "db": ["h1"]})
    assert data.groups["web"].hosts == [] and data.groups["web"].vars == {"a": 1} and list(data.hosts) == ["h1"]
    asked = []
    data = parsed({"web": ["h1", "h1"]}, lambda name: asked.append(name) or {"w": name})
    assert asked == ["h1"] and data.hosts["h1"].vars == {"w": "h1"}
    assert parsed({"web": ["h1"]}).hosts["h1"].vars == {}


@pytest.mark.parametrize("tree, message", [
    (["web"], "inv.sh: inventory JSON must be an object of groups, got list"),
    ({"_meta": {"hostvars": []}}, "inv.sh: '_meta.hostvars' must be an object of hosts"),
    ({"web": {"hosts": "h1"}}, "inv.sh: group 'web': field 'hosts' must be a list"),
    ({"web": {"hosts": ["h1"], "vars": [1]}}, "inv.sh: group 'web': field 'vars' must be an object"),
    ({"web": {"children": "db"}}, "inv.sh: group 'web': field 'children' must be a list"),
    ({"web": ["h1"], "_meta": {"hostvars": {"h1": [1]}}}, "inv.sh: host 'h1': variables must be an object"),
    ({"web": {"children": ["web"]}}, "inv.sh: group 'web': cannot be a child of itself"),
    ({"web": {"children": ["a/b"]}}, "inv.sh: group 'a/b': must be a plain name (no '/', '\\', '.' or '..'), since "
                                     "it names a file in group_vars/ or host_vars/"),
    ({"a/b": ["h1"]}, "inv.sh: group 'a/b': must be a plain name (no '/', '\\', '.' or '..'), since it names a "
                      "file in group_vars/ or host_vars/"),
])
def test_refusals_word_for_word(tree, message):
    with pytest.raises(InventoryError) as err:
        parsed(tree)
    assert str(err.value) == message


def test_script_output_that_is_not_json():
    with pytest.raises(InventoryError) as err:
        script.parse_output("inv.sh", "\nnot   json at all\n")
    assert str(err.value) == "inv.sh: inventory script output is not JSON (Expecting value at line 2): " \
                             "'not json at all'"
    with pytest.raises(InventoryError) as err:
        script.parse_output("inv.sh", "[" * 100000)
    assert str(err.value) == "inv.sh: inventory script output is nested too deeply"
    assert script.parse_output("x", '{"a": [1]}') == {"a": [1]}
    with pytest.raises(InventoryError) as err:
        script.parse_output("inv.sh", "x" * 100)
    assert str(err.value).endswith(f"at line 1): {'x' * 80!r}")


def _loaded(tree, merged):
    data = parsed(tree)
    return Loaded(["inv.json"], data, merged, {})


TREE = {"web": {"hosts": ["h1", "h2"], "children": ["db"]}, "db": ["h3"], "edge": {"children": ["db"]},
        "empty": {"hosts": []}}


def test_graph_exactly():
    loaded = _loaded(TREE, {})
    assert show.graph(loaded) == "\n".join([
        "@all:", "  |--@ungrouped:", "  |--@web:", "  |  |--@db:", "  |  |  |--h3", "  |  |--h1", "  |  |--h2",
        "  |--@edge:", "  |  |--@db:", "  |  |  |--h3", "  |--@empty:"])
    assert show.graph(loaded, "db") == "@db:\n  |--h3"
    with pytest.raises(InventoryError, match=r"^inv\.json: --graph: no group named 'nope'$"):
        show.graph(loaded, "nope")


def test_graph_over_the_bound_is_refused(monkeypatch):
    monkeypatch.setattr(show, "MAX_LINES", 3)
    with pytest.raises(InventoryError) as err:
        show.graph(_loaded(TREE, {}))
    assert str(err.value) == "inv.json: --graph: the tree is over 3 lines (groups shared by many parents); use --list"
    monkeypatch.setattr(show, "MAX_LINES", 10)
    with pytest.raises(InventoryError, match="the tree is over 10 lines"):
        show.graph(_loaded(TREE, {}))
    monkeypatch.setattr(show, "MAX_LINES", 11)
    assert len(show.graph(_loaded(TREE, {})).splitlines()) == 11


def test_hosts_of_all_itself_are_listed_under_ungrouped_only_and_dates_print_as_text():
    import datetime
    loaded = _loaded({"all": {"hosts": ["h0"]}}, {"h0": {"day": datetime.date(2026, 1, 2)}})
    assert json.loads(show.listing(loaded)) == {"all": {"children": ["ungrouped"]}, "ungrouped": {"hosts": ["h0"]},
                                                "_meta": {"hostvars": {"h0": {"day": "2026-01-02"}},
                                                          "profile": "inventory_legacy"}}
    assert show.host(loaded, "h0") == '{\n    "day": "2026-01-02"\n}'


def test_hosts_of_all_itself_show_under_ungrouped_only():
    assert show.graph(_loaded({"all": {"hosts": ["h0"]}, "web": ["h1"]}, {})) == \
        "@all:\n  |--@ungrouped:\n  |  |--h0\n  |--@web:\n  |  |--h1"


def test_host_masks_secrets_by_purpose_and_list_masks_nothing():
    merged = {"h1": {"ansible_become_pass": "s", "db_password": "p", "api_token": "t", "passage": "ok", "n": 1,
                     "kube_webhook_token_auth": True, "ansible_sudo_pass": 1234},
              "h2": {}, "h3": {"é": "ü"}}
    loaded = _loaded(TREE, merged)
    assert json.loads(show.host(loaded, "h1")) == {"ansible_become_pass": "********", "db_password": "p",
                                                   "api_token": "t", "passage": "ok", "n": 1,
                                                   "kube_webhook_token_auth": True, "ansible_sudo_pass": 1234}
    assert show.host(loaded, "h3") == '{\n    "é": "ü"\n}'
    with pytest.raises(InventoryError, match=r"^inv\.json: --host: no host named 'h9'$"):
        show.host(loaded, "h9")
    listed = json.loads(show.listing(loaded))
    assert listed == {"all": {"children": ["ungrouped", "web", "edge", "empty"]},
                      "web": {"hosts": ["h1", "h2"], "children": ["db"]}, "db": {"hosts": ["h3"]},
                      "edge": {"children": ["db"]},
                      "_meta": {"hostvars": {"h1": merged["h1"], "h3": {"é": "ü"}}, "profile": "inventory_legacy"}}
    assert show.listing(loaded).startswith('{\n    "_meta": {\n        "hostvars": {')
    deep: list = []
    for _ in range(100000):
        deep = [deep]
    with pytest.raises(InventoryError, match="^a variable is nested too deeply to print$"):
        show.host(_loaded(TREE, {"h1": {"d": deep}}), "h1")
