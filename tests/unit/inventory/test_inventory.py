"""Inventory loading and validation: every broken input gives one line naming file and field."""
import textwrap

import pytest

from provision.inventory import InventoryError, load

GOOD = """
all:
  vars:
    proxy_mode: balancer
  children:
    proxies:
      hosts:
        proxy: {ansible_host: 10.0.0.10}
    backends:
      vars:
        ansible_user: deploy
      hosts:
        web1:
          ansible_host: 10.0.0.11
          apps: [{name: hello, port: 8080, message: "Hello world!"}]
        web2:
          host: 10.0.0.12
          port: 2222
          key: keys/web2
          apps: [{name: howdy, port: 8081, message: "Howdy world!"}]
"""


def write(tmp_path, text, name="inv.yml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_short_names_are_ordinary_variables_not_connection_fields(tmp_path):
    """`host`, `port`, `user`, `key` are any role's variables (a database's `port: 5432`)."""
    inv = load(write(tmp_path, GOOD))
    assert [h.name for h in inv.group("backends")] == ["web1", "web2"]
    web2 = inv.hosts["web2"]
    assert (web2.address, web2.port, web2.user, web2.key) == ("web2", None, "deploy", None)
    assert web2.vars["port"] == 2222 and web2.vars["host"] == "10.0.0.12"
    assert web2.apps[0]["message"] == "Howdy world!"
    assert inv.hosts["proxy"].vars["proxy_mode"] == "balancer"
    assert inv.hosts["proxy"].user is None


def test_port_in_group_vars_all_is_not_the_ssh_port(tmp_path):
    write(tmp_path, GOOD)
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("port: 5432\n")
    inv = load(tmp_path / "inv.yml")
    assert all(h.port is None for h in inv.hosts.values())
    assert inv.hosts["web1"].vars["port"] == 5432 and inv.hosts["web2"].vars["port"] == 2222


def test_connection_aliases_the_ssh_spelling_wins(tmp_path):
    text = GOOD.replace("proxy: {ansible_host: 10.0.0.10}",
                        "proxy: {ansible_host: 10.0.0.99, ansible_ssh_host: 10.0.0.10, ansible_ssh_port: '2200',"
                        " ansible_ssh_user: admin, ansible_ssh_private_key_file: k/id}")
    proxy = load(write(tmp_path, text)).hosts["proxy"]
    assert (proxy.address, proxy.port, proxy.user, proxy.key) == ("10.0.0.10", 2200, "admin",
                                                                  str(tmp_path / "k" / "id"))


def test_group_vars_and_host_vars_folders(tmp_path):
    write(tmp_path, GOOD)
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "proxies.yml").write_text("lbmethod: bybusyness\n")
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "proxy.yml").write_text("server_name: www.example.test\n")
    inv = load(tmp_path / "inv.yml")
    assert inv.hosts["proxy"].vars["lbmethod"] == "bybusyness"
    assert inv.hosts["proxy"].vars["server_name"] == "www.example.test"


def test_host_vars_override_group_vars(tmp_path):
    text = GOOD.replace("proxy: {ansible_host: 10.0.0.10}", "proxy: {ansible_host: 10.0.0.10, proxy_mode: single}")
    inv = load(write(tmp_path, text))
    assert inv.hosts["proxy"].vars["proxy_mode"] == "single"


def test_existing_ansible_keys_are_accepted(tmp_path):
    text = GOOD.replace("proxy_mode: balancer", "proxy_mode: balancer\n    ansible_python_interpreter: /usr/bin/python3"
                        "\n    ansible_become: true")
    load(write(tmp_path, text))


def test_limit_selects_hosts_and_groups(tmp_path):
    inv = load(write(tmp_path, GOOD))
    assert [h.name for h in inv.select("proxy,backends")] == ["proxy", "web1", "web2"]
    assert [h.name for h in inv.select("all:!web1")] == ["proxy", "web2"]
    with pytest.raises(InventoryError, match="--limit 'nope': no host matches"):
        inv.select("nope")


BROKEN = [
    ("misspelt key", GOOD.replace("apps: [{name: hello", "lbmehtod: bytraffic\n          apps: [{name: hello"),
     "host 'web1': unknown field 'lbmehtod' (did you mean 'lbmethod'?)"),
    ("duplicate host", GOOD.replace("proxy: {ansible_host: 10.0.0.10}",
                                    "proxy: {ansible_host: 10.0.0.10}\n        proxy: {ansible_host: 10.0.0.9}"),
     "key 'proxy' is given twice in one mapping (lines 8 and 9)"),
    ("two apps on one port", GOOD.replace('apps: [{name: hello, port: 8080, message: "Hello world!"}]',
                                          'apps: [{name: a, port: 8080, message: A}, {name: b, port: 8080, message: B}]'),
     "field 'apps[1].port': port 8080 is already used by app 'a'"),
    ("app missing message", GOOD.replace(', message: "Hello world!"', ""), "field 'apps[0].message' is missing"),
    ("bad proxy mode", GOOD.replace("proxy_mode: balancer", "proxy_mode: roundrobin"),
     "field 'proxy_mode' must be one of single, balancer"),
    ("same address twice", GOOD.replace("host: 10.0.0.12\n          port: 2222", "ansible_host: 10.0.0.11"),
     "host 'web2': field 'ansible_host': 10.0.0.11:22 is already host 'web1'"),
    ("not yaml", "all: [unclosed\n", "inv.yml:2: "),
    ("group not a mapping", "all: [a, b]\n", "group 'all': must be a mapping"),
    ("vars not a mapping", GOOD.replace("proxy_mode: balancer", "- x"), "inv.yml"),
    ("apps outside backends", GOOD.replace("proxy: {ansible_host: 10.0.0.10}",
                                           "proxy: {ansible_host: 10.0.0.10, apps: [{name: a, port: 9000, message: A}]}"),
     "host 'proxy': field 'apps' is set but the host is not in group 'backends'"),
    ("wrong type", GOOD.replace("proxy_mode: balancer", "balancer_retry: soon"),
     "field 'balancer_retry' must be int"),
    ("bad app name", GOOD.replace("name: hello", "name: 'Hello World'"), "field 'apps[0].name'"),
    ("unknown group key", GOOD.replace("  children:", "  kids: {}\n  children:"), "unknown key 'kids'"),
]


@pytest.mark.parametrize("what,text,expected", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_inventories_give_one_line(tmp_path, what, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(InventoryError) as err:
        load(path)
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message
    assert expected in message


def test_group_vars_for_a_group_not_in_the_inventory_are_ignored(tmp_path):
    """As Ansible: group_vars/webservers.yml with no group 'webservers' is simply not used."""
    write(tmp_path, GOOD)
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "webservers.yml").write_text("lbmethod: bybusyness\n")
    assert "lbmethod" not in load(tmp_path / "inv.yml").hosts["proxy"].vars


def test_missing_file(tmp_path):
    with pytest.raises(InventoryError, match="no such inventory file"):
        load(tmp_path / "nope.yml")


def test_lab_and_tutorial_inventories_load():
    from pathlib import Path
    root = Path(__file__).resolve().parents[3] / "inventory"
    for name in ("lab.yml", "tutorial.yml"):
        inv = load(root / name)
        assert inv.group("proxies") and inv.group("backends")
