"""-e/--extra-vars: key=value words, inline YAML/JSON, @FILE; highest precedence; an error names -e."""
import json

import pytest

from provision.inventory import InventoryError, load
from provision.inventory.extra import merged, parse

INVENTORY = """
all:
  vars: {proxy_mode: balancer}
  children:
    proxies:
      hosts: {proxy: {ansible_host: 10.0.0.10}}
    backends:
      hosts:
        web1: {ansible_host: 10.0.0.11, apps: [{name: hello, port: 8080, message: Hello}]}
"""


def write(tmp_path, text=INVENTORY):
    path = tmp_path / "inventory.yml"
    path.write_text(text)
    return path


def test_key_values_are_strings_with_shell_quoting():
    assert parse(["a=1 b='two words' c="]) == [("-e", {"a": "1", "b": "two words", "c": ""})]


def test_inline_json_and_yaml_keep_types():
    assert parse(['{"balancer_retry": 5, "x": [1]}', "{tls_redirect: true}"]) == [
        ("-e", {"balancer_retry": 5, "x": [1]}), ("-e", {"tls_redirect": True})]


def test_file_of_variables(tmp_path):
    (tmp_path / "vars.yml").write_text("proxy_mode: single\nlbmethod: bytraffic\n")
    (tmp_path / "vars.json").write_text(json.dumps({"lbmethod": "bybusyness"}))
    variables, origins = merged([f"@{tmp_path / 'vars.yml'}", f"@{tmp_path / 'vars.json'}", "x=1"])
    assert variables == {"proxy_mode": "single", "lbmethod": "bybusyness", "x": "1"}
    assert origins == {"proxy_mode": f"-e @{tmp_path / 'vars.yml'}", "lbmethod": f"-e @{tmp_path / 'vars.json'}",
                       "x": "-e"}


@pytest.mark.parametrize("value,message", [
    ("novalue", "'novalue' is not key=value"),
    ("=x", "'=x' is not key=value"),
    ("{a: [1", "not valid YAML or JSON"),
    ("[1, 2]", "-e: must give a mapping of variables, got list"),
    ("./vars.yml", "needs '@' in front"),
    ("a='open", "No closing quotation"),
])
def test_bad_values_are_one_line_naming_e(value, message):
    with pytest.raises(InventoryError) as err:
        parse([value])
    assert str(err.value).startswith("-e") and message in str(err.value) and "\n" not in str(err.value)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(InventoryError, match="no such inventory file|no such file"):
        parse([f"@{tmp_path / 'nope.yml'}"])


def test_extra_vars_win_over_every_inventory_variable(tmp_path):
    inventory = load(write(tmp_path), extra_vars=["proxy_mode=single"])
    assert inventory.hosts["proxy"].vars["proxy_mode"] == "single"
    assert inventory.hosts["proxy"].origins["proxy_mode"] == "-e"


def test_a_bad_extra_value_is_validated_and_names_e(tmp_path):
    with pytest.raises(InventoryError) as err:
        load(write(tmp_path), extra_vars=["proxy_mode=round-robin"])
    assert str(err.value) == ("-e: host 'proxy': field 'proxy_mode' must be one of single, balancer, "
                              "got 'round-robin'")


def test_extra_connection_variables_apply(tmp_path):
    inventory = load(write(tmp_path), extra_vars=['{"ansible_user": "deploy", "ansible_port": 2222}'])
    assert inventory.hosts["web1"].user == "deploy" and inventory.hosts["web1"].port == 2222


def test_collecting_mode_lists_every_host_problem(tmp_path):
    text = INVENTORY.replace("{ansible_host: 10.0.0.10}", "{ansible_host: 10.0.0.10, lbmethod: nope}")
    text = text.replace("port: 8080", "port: 80")
    errors = []
    inventory = load(write(tmp_path, text), errors=errors)
    assert len(errors) == 2 and "'lbmethod'" in errors[0] and "'apps[0].port'" in errors[1]
    assert inventory.hosts == {}
