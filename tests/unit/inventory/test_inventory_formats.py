"""Every format Ansible reads, and the checks on merged variables (issues 11 and 12)."""
import json
import textwrap

import pytest

from provision.inventory import InventoryError, load, read
from tests.support.refusal import deploy_refusal

README_INI = """
[proxies]
proxy ansible_host=10.123.0.10

[backends]
web1 ansible_host=10.123.0.11 apps="[{'name': 'hello', 'port': 8080, 'message': 'Hello world!'}]"
web2 ansible_host=10.123.0.12 apps="[{'name': 'howdy', 'port': 8081, 'message': 'Howdy world!'}]"

[all:vars]
proxy_mode=balancer
"""


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def one_line_error(path, monkeypatch) -> str:
    """Deploy must stop with exit 2 and one line, before any connection."""
    class NoConnect:
        def __init__(self, *a, **kw):
            raise AssertionError("a connection was attempted")
    monkeypatch.setattr("provision.engine.HostConnection", NoConnect)
    lines = deploy_refusal(str(path))
    assert len(lines) == 1, lines
    return lines[0]


def test_ini_inventory(tmp_path):
    inv = load(write(tmp_path / "hosts", README_INI))
    assert [h.name for h in inv.group("backends")] == ["web1", "web2"]
    assert inv.hosts["web2"].apps == [{"name": "howdy", "port": 8081, "message": "Howdy world!"}]
    assert inv.hosts["proxy"].vars["proxy_mode"] == "balancer"


def test_folder_with_group_vars_and_host_vars_folder(tmp_path):
    folder = tmp_path / "inv"
    write(folder / "hosts", README_INI.replace("[all:vars]\nproxy_mode=balancer\n", ""))
    write(folder / "group_vars" / "proxies.yml", "proxy_mode: single\nlbmethod: bybusyness\n")
    write(folder / "host_vars" / "web1" / "main.yml", "private_address: 10.123.0.11\n")
    inv = load(folder)
    assert inv.hosts["proxy"].vars["proxy_mode"] == "single"
    assert inv.hosts["web1"].private_address == "10.123.0.11"
    assert inv.path == folder


def test_several_sources_merge_in_order(tmp_path):
    first = write(tmp_path / "a" / "hosts", "[proxies]\nproxy ansible_host=10.0.0.1 colour=red\n")
    second = write(tmp_path / "b" / "hosts.yml", "backends:\n  hosts:\n    proxy: {colour: blue}\n")
    write(tmp_path / "b" / "group_vars" / "all.yml", "lbmethod: bytraffic\n")
    loaded = read([first, second])
    assert loaded.vars["proxy"]["colour"] == "blue" and loaded.vars["proxy"]["lbmethod"] == "bytraffic"
    assert loaded.data.hosts["proxy"].groups == ["proxies", "backends"]


def test_host_in_two_groups_with_variables_in_both(tmp_path):
    """One server for proxy and backend: listed in both groups, as Ansible allows."""
    inv = load(write(tmp_path / "hosts.yml", """
        all:
          children:
            proxies:
              hosts:
                box: {ansible_host: 10.0.0.5, server_name: box.example.test}
            backends:
              hosts:
                box: {apps: [{name: hello, port: 8080, message: Hi}]}
    """))
    box = inv.hosts["box"]
    assert box.groups == ["backends", "proxies"] and box.apps and box.vars["server_name"] == "box.example.test"
    assert inv.group("proxies") == inv.group("backends") == [box]


def test_list_json_file_and_script(tmp_path):
    listing = {"proxies": {"hosts": ["proxy"]}, "backends": ["web1"],
               "_meta": {"hostvars": {"proxy": {"ansible_host": "10.0.0.1"}}}}
    path = write(tmp_path / "inv.json", json.dumps(listing))
    assert load(path).hosts["proxy"].address == "10.0.0.1"
    script = write(tmp_path / "dyn", f"#!/bin/sh\necho '{json.dumps(listing)}'\n")
    script.chmod(0o755)
    assert set(load(script).hosts) == {"proxy", "web1"}


def test_failing_script_gives_its_exit_status_and_output(tmp_path):
    script = write(tmp_path / "dyn", "#!/bin/sh\necho 'cannot reach the cloud API' >&2\nexit 3\n")
    script.chmod(0o755)
    with pytest.raises(InventoryError, match=r"dyn: inventory script --list exited 3: cannot reach the cloud API"):
        load(script)
    write(script, "#!/bin/sh\necho 'not json'\n")
    with pytest.raises(InventoryError, match="inventory script output is not JSON"):
        load(script)


@pytest.mark.parametrize("text,expected", [
    ("[a:children]\nb\n[b:children]\na\n", "a cycle in 'children'"),
    ("[g]\nweb[1:a]\n", "bounds must be numbers or single letters"),
    ("[g]\nweb[01:5]\n", "same width"),
    ("[g:vars]\nx=1\n", "section [g:vars] is for a group that is never declared"),
    ("[a:children]\nnever\n", "names group 'never', which is never declared"),
    ("[g]\nhost:\n", "a trailing ':' must be followed by a port"),
    ("[g]\nh x\n", "expected key=value, got 'x'"),
    ("[g]\nh x='unclosed\n", "cannot parse host line"),
    ("[/tmp/x/outside]\nh\n", "must be a plain name"),
    ("[g]\n../../etc\n", "must be a plain name"),
])
def test_ini_errors_are_one_line_with_file_and_line(tmp_path, text, expected):
    path = write(tmp_path / "hosts", text)
    with pytest.raises(InventoryError) as err:
        read(path)
    assert expected in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_group_vars_path_is_never_outside_the_folder(tmp_path):
    """A group named like a path is refused before any group_vars/ lookup."""
    outside = write(tmp_path / "outside" / "evil.yml", "lbmethod: bytraffic\n")
    path = write(tmp_path / "inv" / "hosts.yml", f"all:\n  children:\n    '{outside.parent}':\n      hosts: {{h: }}\n")
    with pytest.raises(InventoryError, match="must be a plain name"):
        read(path)


# -- issue 11 acceptance 4 and issue 12 item 4: one validation on merged variables ----------------

def test_accept_new_host_keys_string_refused_in_group_vars_like_in_the_inventory(tmp_path, monkeypatch):
    inv = write(tmp_path / "hosts", README_INI)
    gv = write(tmp_path / "group_vars" / "all.yml", "accept_new_host_keys: 'false'\n")
    from_file = one_line_error(inv, monkeypatch)
    assert from_file == (f"error: {gv}: host 'proxy': field 'accept_new_host_keys' must be bool, got str 'false'")
    gv.unlink()
    write(tmp_path / "hosts", README_INI + "accept_new_host_keys='false'\n")
    from_inventory = one_line_error(inv, monkeypatch)
    assert from_inventory.split(": host ")[1] == from_file.split(": host ")[1]
    assert from_inventory.startswith(f"error: {inv}:")


@pytest.mark.parametrize("line,expected", [
    ("balancer_retry: '5'", "field 'balancer_retry' must be int, got str '5'"),
    ("server_name: 123", "field 'server_name' must be str, got int 123"),
    ("health_path: \"/health\\n\"", "field 'health_path' contains the control character '\\n'"),
    ("private_address: 0.0.0.0", "field 'private_address' must be one specific address"),
    ("private_address: '::'", "field 'private_address' must be one specific address"),
    ("proxy_mdoe: single", "unknown field 'proxy_mdoe' (did you mean 'proxy_mode'?)"),
])
def test_group_vars_values_are_validated(tmp_path, monkeypatch, line, expected):
    inv = write(tmp_path / "hosts", README_INI)
    gv = write(tmp_path / "group_vars" / "all.yml", line + "\n")
    error = one_line_error(inv, monkeypatch)
    assert error.startswith(f"error: {gv}: host ") and expected in error, error


def test_port_5432_in_group_vars_all_is_a_database_port_not_ssh(tmp_path):
    write(tmp_path / "group_vars" / "all.yml", "port: 5432\nuser: postgres\nhost: db.example.test\nkey: k\n")
    inv = load(write(tmp_path / "hosts", README_INI))
    for h in inv.hosts.values():
        assert (h.port, h.user, h.key) == (None, None, None) and h.address.startswith("10.123.0.")


def test_app_name_with_trailing_newline_is_refused(tmp_path, monkeypatch):
    inv = write(tmp_path / "hosts.yml", """
        all:
          children:
            proxies: {hosts: {proxy: {ansible_host: 10.0.0.1}}}
            backends: {hosts: {web1: {ansible_host: 10.0.0.2, apps: [{name: "hello\\n", port: 8080, message: Hi}]}}}
    """)
    assert "field 'apps[0].name' must be lowercase" in one_line_error(inv, monkeypatch)


# -- issue 12 item 3: values that reach ssh_config or a command line ------------------------------

@pytest.mark.parametrize("var,value,expected", [
    ("ansible_host", "10.0.0.11;touch${IFS}/tmp/p;", "field 'ansible_host' must be a host name or an IP address"),
    ("ansible_host", "web\\n", "field 'ansible_host' contains the control character '\\n'"),
    ("ansible_host", "fe80::1%@127.0.0.1\\nProxyRequests On\\n#", "field 'ansible_host' contains the control character"),
    ("ansible_host", "fe80::1%@127.0.0.1", "field 'ansible_host' is a scoped IPv6 address (a zone ID after '%')"),
    ("ansible_host", "fe80::1%eth0", "field 'ansible_host' is a scoped IPv6 address"),
    ("ansible_host", "-oProxyCommand=id", "field 'ansible_host' must be a host name or an IP address"),
    ("ansible_ssh_private_key_file", "k\\nProxyCommand sh -c 'id > /tmp/x'", "contains the control character"),
    ("ssh_config", "cfg\\nProxyCommand id", "field 'ssh_config' contains the control character"),
    ("ansible_user", "root\\n", "field 'ansible_user' is not a valid user name"),
    ("ansible_ssh_common_args", "-o ProxyCommand=id", "ssh option 'ProxyCommand' is not supported"),
    ("ansible_ssh_extra_args", "-J 'a;b'", "jump host 'a;b' must be [user@]host[:port]"),
    ("ansible_connection", "local", "field 'ansible_connection' is 'local'; only ssh is supported"),
    ("ansible_become_method", "su", "only sudo is supported"),
])
def test_connection_values_are_checked_before_any_connection(tmp_path, monkeypatch, var, value, expected):
    address = "" if var == "ansible_host" else "ansible_host: 10.0.0.1, "
    inv = write(tmp_path / "hosts.yml", f"""
        all:
          children:
            proxies: {{hosts: {{proxy: {{{address}{var}: "{value}"}}}}}}
            backends: {{hosts: {{web1: {{ansible_host: 10.0.0.2, apps: [{{name: a, port: 8080, message: Hi}}]}}}}}}
    """)
    error = one_line_error(inv, monkeypatch)
    assert error.startswith(f"error: {inv}: host 'proxy': ") and expected in error, error


def test_proxy_jump_and_become_are_read(tmp_path):
    inv = load(write(tmp_path / "hosts", "[proxies]\nproxy ansible_ssh_common_args='-o ProxyJump=admin@bastion:2222'"
                     " ansible_become=yes ansible_become_user=root ansible_become_password=hunter2\n"))
    proxy = inv.hosts["proxy"]
    assert (proxy.proxy_jump, proxy.become, proxy.become_user) == ("admin@bastion:2222", True, "root")
    assert proxy.become_password == "hunter2" and "hunter2" not in repr(proxy)
    assert "ansible_become_password" not in proxy.vars


def test_a_local_host_outside_the_roles_does_not_stop_a_deploy_plan(tmp_path):
    inv = load(write(tmp_path / "hosts", README_INI + "\n[local]\nlocalhost ansible_connection=local\n"))
    assert [h.name for h in inv.group("proxies")] == ["proxy"]
    with pytest.raises(InventoryError, match="'ansible_connection' is 'local'"):
        inv.select("localhost")


# -- issue 11 acceptance 5 -------------------------------------------------------------------------

def test_two_hosts_with_the_same_key_exit_2_naming_both_lines(tmp_path, monkeypatch):
    inv = write(tmp_path / "hosts.yml", """
        all:
          children:
            proxies:
              hosts:
                proxy: {ansible_host: 10.0.0.1}
            backends:
              hosts:
                web1: {ansible_host: 10.0.0.2, apps: [{name: a, port: 8080, message: A}]}
                web1: {ansible_host: 10.0.0.3, apps: [{name: b, port: 8081, message: B}]}
    """)
    assert one_line_error(inv, monkeypatch) == (f"error: {inv}:10: key 'web1' is given twice in one mapping "
                                                "(lines 9 and 10)")



def test_host_listed_by_name_only_gets_its_address_from_ssh_config(tmp_path):
    """No ansible_host: Ansible connects to the name; with an ssh_config, its HostName is the
    address the proxy and the checks use, and the connection still goes through the alias."""
    write(tmp_path / "ssh_config", "Host web1\n    HostName 10.123.0.11\n    User root\n")
    inv = load(write(tmp_path / "hosts", "[all:vars]\nssh_config=ssh_config\n[proxies]\nproxy\n[backends]\n"
                     "web1 apps=\"[{'name': 'hello', 'port': 8080, 'message': 'Hi'}]\"\n"))
    web1, proxy = inv.hosts["web1"], inv.hosts["proxy"]
    assert (web1.address, web1.private_address, web1.explicit_address) == ("10.123.0.11", "10.123.0.11", False)
    assert (proxy.address, proxy.explicit_address) == ("proxy", False)
    plain = load(write(tmp_path / "plain", "[proxies]\nproxy.example.test\n"))
    assert (plain.hosts["proxy.example.test"].address, plain.hosts["proxy.example.test"].explicit_address) == \
        ("proxy.example.test", True)


def test_unreadable_file_is_one_line(tmp_path, monkeypatch):
    path = write(tmp_path / "hosts", "[g]\nh\n")

    def denied(self):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(type(path), "read_bytes", denied)
    with pytest.raises(InventoryError, match=r"hosts: cannot read: Permission denied$"):
        read(path)


def test_deploy_merges_several_inventories_in_order(tmp_path, monkeypatch):
    """`invoke deploy -i a -i b`: b's values win, and an error names the file that set the value."""
    first = write(tmp_path / "a" / "hosts", README_INI)
    second = write(tmp_path / "b" / "hosts.yml", "backends:\n  hosts:\n    web2: {balancer_retry: soon}\n")

    class NoConnect:
        def __init__(self, *a, **kw):
            raise AssertionError("a connection was attempted")
    monkeypatch.setattr("provision.engine.HostConnection", NoConnect)
    assert deploy_refusal([str(first), str(second)]) == [
        f"error: {second}: host 'web2': field 'balancer_retry' must be int, got str 'soon'"]
