"""provision.inventory.validate on merged variables: each refusal word for word, naming the file that
set the field, and the connection fields as the Host gets them (no inventory file is read)."""
from pathlib import Path

import pytest

from provision.inventory import validate
from provision.inventory.errors import InventoryError

BASE = Path("/srv/inv")


def origins_of(v: dict) -> dict:
    """Each field set by a file of its own name, so an error naming the wrong field's file shows."""
    return {k: f"{k}.yml" for k in v}


def refusal(v: dict) -> str:
    with pytest.raises(InventoryError) as err:
        validate.build_host("h1", v, origins_of(v), ["web"], BASE)
    return str(err.value)


def unusable(v: dict) -> str | None:
    return validate.build_host("h1", v, origins_of(v), ["web"], BASE).unusable


ROLE_REFUSALS = [
    ({"balancer_retry": "5"}, "balancer_retry.yml: host 'h1': field 'balancer_retry' must be int, got str '5'"),
    ({"balancer_retry": True}, "balancer_retry.yml: host 'h1': field 'balancer_retry' must be int, got bool True"),
    ({"tls_redirect": 1}, "tls_redirect.yml: host 'h1': field 'tls_redirect' must be bool, got int 1"),
    ({"apps": {}}, "apps.yml: host 'h1': field 'apps' must be list, got dict {}"),
    ({"ssh_config": ""}, "ssh_config.yml: host 'h1': field 'ssh_config' must be text, got ''"),
    ({"server_name": ""}, "server_name.yml: host 'h1': field 'server_name' must be text, got ''"),
    ({"server_name": "a\u200bb"},
     "server_name.yml: host 'h1': field 'server_name' contains the control character '\\u200b'"),
    ({"proxy_mdoe": "single"}, "proxy_mdoe.yml: host 'h1': unknown field 'proxy_mdoe' (did you mean 'proxy_mode'?)"),
    ({"proxy_mode": "both"},
     "proxy_mode.yml: host 'h1': field 'proxy_mode' must be one of single, balancer, got 'both'"),
    ({"lbmethod": "heartbeat"},
     "lbmethod.yml: host 'h1': field 'lbmethod' must be one of byrequests, bytraffic, bybusyness, got 'heartbeat'"),
    ({"tls": "on"}, "tls.yml: host 'h1': field 'tls' must be one of off, self-signed, provided, acme, got 'on'"),
    ({"tls": "provided"}, "tls.yml: host 'h1': field 'tls_cert'/'tls_key' are required with tls: provided"),
    ({"tls": "provided", "tls_cert": "c.pem"},
     "tls.yml: host 'h1': field 'tls_cert'/'tls_key' are required with tls: provided"),
    ({"tls": "provided", "tls_key": "k.pem"},
     "tls.yml: host 'h1': field 'tls_cert'/'tls_key' are required with tls: provided"),
    ({"tls_names": ["a.test", "a b"]},
     "tls_names.yml: host 'h1': field 'tls_names[1]' must be a host name or address, got 'a b'"),
    ({"tls_names": [3]}, "tls_names.yml: host 'h1': field 'tls_names[0]' must be a host name or address, got 3"),
    ({"balancer_retry": -1}, "balancer_retry.yml: host 'h1': field 'balancer_retry' must be 0-3600 seconds, got -1"),
    ({"balancer_timeout": 3601},
     "balancer_timeout.yml: host 'h1': field 'balancer_timeout' must be 0-3600 seconds, got 3601"),
    ({"balancer_connectiontimeout": -1},
     "balancer_connectiontimeout.yml: host 'h1': field 'balancer_connectiontimeout' must be 0-3600 seconds, got -1"),
    ({"server_name": "a_b.test"}, "server_name.yml: host 'h1': field 'server_name' is not a host name: 'a_b.test'"),
    ({"health_path": "health"},
     "health_path.yml: host 'h1': field 'health_path' must be a URL path like /health, got 'health'"),
    ({"health_path": "/a?b"},
     "health_path.yml: host 'h1': field 'health_path' must be a URL path like /health, got '/a?b'"),
    ({"private_address": "web1"}, "private_address.yml: host 'h1': field 'private_address' is not an IP address: "
                                  "'web1'"),
    ({"private_address": "0.0.0.0"},
     "private_address.yml: host 'h1': field 'private_address' must be one specific address, not '0.0.0.0' "
     "(a wildcard would expose the apps on every interface)"),
    ({"private_address": "224.0.0.1"},
     "private_address.yml: host 'h1': field 'private_address' must be one specific address, not '224.0.0.1' "
     "(a wildcard would expose the apps on every interface)"),
    ({"proxy_extra_directives": ["KeepAlive On", " "]},
     "proxy_extra_directives.yml: host 'h1': field 'proxy_extra_directives[1]' must be one directive on one line"),
    ({"proxy_extra_directives": ["A\nB"]},
     "proxy_extra_directives.yml: host 'h1': field 'proxy_extra_directives[0]' must be one directive on one line"),
    ({"proxy_extra_directives": ["A\x1fB"]},
     "proxy_extra_directives.yml: host 'h1': field 'proxy_extra_directives[0]' must be one directive on one line"),
    ({"proxy_extra_directives": ["A\u2028B"]},
     "proxy_extra_directives.yml: host 'h1': field 'proxy_extra_directives[0]' must be one directive on one line"),
    ({"proxy_extra_directives": [3]},
     "proxy_extra_directives.yml: host 'h1': field 'proxy_extra_directives[0]' must be one directive on one line"),
    ({"pools": {"web": {"members": []}}, "sites": [{"server_name": "a.test", "routes": [{"path": "/", "pool": "web"}]}]},
     "sites.yml: host 'h1': field 'pools.web.members' must be a non-empty list of hosts, groups or host:app"),
    ({"sites": [{"server_name": "a.test", "routes": [{"path": "/", "pool": "web"}]}]},
     "sites.yml: host 'h1': field 'pools' must be a mapping of pool names, with sites"),
    ({"pools": {"web": {"members": ["web1"]}}},
     "pools.yml: host 'h1': field 'sites' must be a list of sites, with pools"),
    ({"balancer_failonstatus": [503, 499]},
     "balancer_failonstatus.yml: host 'h1': field 'balancer_failonstatus[1]' must be a 5xx status, got 499"),
    ({"balancer_failonstatus": [600]},
     "balancer_failonstatus.yml: host 'h1': field 'balancer_failonstatus[0]' must be a 5xx status, got 600"),
    ({"balancer_failonstatus": [True]},
     "balancer_failonstatus.yml: host 'h1': field 'balancer_failonstatus[0]' must be a 5xx status, got True"),
    ({"balancer_failonstatus": ["503"]},
     "balancer_failonstatus.yml: host 'h1': field 'balancer_failonstatus[0]' must be a 5xx status, got '503'"),
    # apps
    ({"apps": ["hello"]}, "apps.yml: host 'h1': field 'apps[0]' must be a mapping with name, port, message"),
    ({"apps": [{"name": "a", "port": 8080, "message": "m", "zz": 1, "colour": 2}]},
     "apps.yml: host 'h1': field 'apps[0].colour' is unknown (apps take message, name, port, or project/package with data_dir, env, files, health, keep_releases, release_command, requirements, secret_env, threads, timeout, workers, wsgi)"),
    ({"apps": [{"name": "a", "message": "m"}]}, "apps.yml: host 'h1': field 'apps[0].port' is missing"),
    ({"apps": [{"port": 8080}]}, "apps.yml: host 'h1': field 'apps[0].message' is missing"),
    ({"apps": [{"name": "Hello", "port": 8080, "message": "m"}]},
     "apps.yml: host 'h1': field 'apps[0].name' must be lowercase letters, digits, - or _, got 'Hello'"),
    ({"apps": [{"name": 5, "port": 8080, "message": "m"}]},
     "apps.yml: host 'h1': field 'apps[0].name' must be lowercase letters, digits, - or _, got 5"),
    ({"apps": [{"name": "a", "port": 8080, "message": "m"}, {"name": "a", "port": 8081, "message": "m"}]},
     "apps.yml: host 'h1': field 'apps[1].name': two apps named 'a'"),
    ({"apps": [{"name": "a", "port": 1023, "message": "m"}]},
     "apps.yml: host 'h1': field 'apps[0].port' must be a port number 1024-65535, got 1023"),
    ({"apps": [{"name": "a", "port": 65536, "message": "m"}]},
     "apps.yml: host 'h1': field 'apps[0].port' must be a port number 1024-65535, got 65536"),
    ({"apps": [{"name": "a", "port": "8080", "message": "m"}]},
     "apps.yml: host 'h1': field 'apps[0].port' must be a port number 1024-65535, got '8080'"),
    ({"apps": [{"name": "a", "port": 8080, "message": "m"}, {"name": "b", "port": 8080, "message": "m"}]},
     "apps.yml: host 'h1': field 'apps[1].port': port 8080 is already used by app 'a'"),
    ({"apps": [{"name": "a", "port": 8080, "message": ""}]},
     "apps.yml: host 'h1': field 'apps[0].message' must be one line of 1-200 printable characters"),
    ({"apps": [{"name": "a", "port": 8080, "message": "m" * 201}]},
     "apps.yml: host 'h1': field 'apps[0].message' must be one line of 1-200 printable characters"),
    ({"apps": [{"name": "a", "port": 8080, "message": "a\tb"}]},
     "apps.yml: host 'h1': field 'apps[0].message' must be one line of 1-200 printable characters"),
    ({"apps": [{"name": "a", "port": 8080, "message": 5}]},
     "apps.yml: host 'h1': field 'apps[0].message' must be one line of 1-200 printable characters"),
]


@pytest.mark.parametrize("v, message", ROLE_REFUSALS)
def test_role_variable_refusals_word_for_word(v, message):
    assert refusal(v) == message


def test_role_values_at_their_limits_pass():
    ok = {"balancer_retry": 0, "balancer_timeout": 3600, "balancer_connectiontimeout": 0, "server_name": "*.A-b.test",
          "health_path": "/", "tls": "provided", "tls_cert": "c", "tls_key": "k", "tls_names": ["::1", "*.a.test"],
          "private_address": "10.0.0.1", "proxy_extra_directives": ["Header set X\t1"],
          "balancer_failonstatus": [500, 599], "proxy_modes": "plural is another variable", "colour": "blue",
          "apps": [{"name": "a", "port": 1024, "message": "m" * 200}, {"name": "b-2_", "port": 65535, "message": "é"}]}
    host = validate.build_host("h1", ok, origins_of(ok), ["web"], BASE)
    assert host.vars == ok and host.unusable is None and host.groups == ["web"]
    assert validate.build_host("h1", {"health_path": "/a-b/c_d.e"}, {}, [], BASE).unusable is None


CONNECTION_REFUSALS = [
    ({"ansible_connection": "local"},
     "ansible_connection.yml: host 'h1': field 'ansible_connection' is 'local'; only ssh is supported"),
    ({"ansible_host": "-oProxyCommand=x"},
     "ansible_host.yml: host 'h1': field 'ansible_host' must be a host name or an IP address, got '-oProxyCommand=x'"),
    ({"ansible_host": "a", "ansible_ssh_host": "b c"},
     "ansible_ssh_host.yml: host 'h1': field 'ansible_ssh_host' must be a host name or an IP address, got 'b c'"),
    ({"ansible_port": 0}, "ansible_port.yml: host 'h1': field 'ansible_port' must be a port number 1-65535, got 0"),
    ({"ansible_port": 65536},
     "ansible_port.yml: host 'h1': field 'ansible_port' must be a port number 1-65535, got 65536"),
    ({"ansible_port": True}, "ansible_port.yml: host 'h1': field 'ansible_port' must be a port number 1-65535, got True"),
    ({"ansible_ssh_port": "22x"},
     "ansible_ssh_port.yml: host 'h1': field 'ansible_ssh_port' must be a port number 1-65535, got '22x'"),
    ({"ansible_port": "\u0662\u0662"},
     "ansible_port.yml: host 'h1': field 'ansible_port' must be a port number 1-65535, got '\u0662\u0662'"),
    ({"ansible_user": "-root"}, "ansible_user.yml: host 'h1': field 'ansible_user' is not a valid user name: '-root'"),
    ({"ansible_ssh_user": 5}, "ansible_ssh_user.yml: host 'h1': field 'ansible_ssh_user' is not a valid user name: 5"),
    ({"ansible_private_key_file": ""},
     "ansible_private_key_file.yml: host 'h1': field 'ansible_private_key_file' must be a path, got ''"),
    ({"ansible_become": "maybe"}, "ansible_become.yml: host 'h1': field 'ansible_become' must be a boolean, got 'maybe'"),
    ({"ansible_become": 2}, "ansible_become.yml: host 'h1': field 'ansible_become' must be a boolean, got 2"),
    ({"ansible_become_method": "su"},
     "ansible_become_method.yml: host 'h1': field 'ansible_become_method' is 'su'; only sudo is supported"),
    ({"ansible_become_user": "a b"},
     "ansible_become_user.yml: host 'h1': field 'ansible_become_user' is not a valid user name: 'a b'"),
    ({"ansible_become_pass": "se\ncret"},
     "ansible_become_pass.yml: host 'h1': field 'ansible_become_pass' must be one line of text (value not shown)"),
    ({"ansible_sudo_pass": 1234},
     "ansible_sudo_pass.yml: host 'h1': field 'ansible_sudo_pass' must be one line of text (value not shown)"),
    ({"ansible_ssh_common_args": "-v"}, "ansible_ssh_common_args.yml: host 'h1': field 'ansible_ssh_common_args': "
                                        "'-v' is not supported (only -o Key=Value or -J HOST, with ProxyJump (or -J), "
                                        "StrictHostKeyChecking yes/accept-new, UserKnownHostsFile, ControlMaster, "
                                        "ControlPersist, ControlPath)"),
    ({"ansible_ssh_extra_args": "-o StrictHostKeyChecking=no"},
     "ansible_ssh_extra_args.yml: host 'h1': field 'ansible_ssh_extra_args': StrictHostKeyChecking=no is not "
     "supported: host keys are always checked (accept-new, or --accept-new-host-keys, trusts new hosts once)"),
    ({"ansible_ssh_common_args": "-o 'ProxyJump=a"},
     "ansible_ssh_common_args.yml: host 'h1': field 'ansible_ssh_common_args': No closing quotation"),
    ({"ansible_ssh_common_args": "-J -x"},
     "ansible_ssh_common_args.yml: host 'h1': field 'ansible_ssh_common_args': jump host '-x' must be "
     "[user@]host[:port]"),
    ({"ansible_ssh_common_args": "-J a@b:123456"},
     "ansible_ssh_common_args.yml: host 'h1': field 'ansible_ssh_common_args': jump host 'a@b:123456' must be "
     "[user@]host[:port]"),
    ({"ansible_ssh_common_args": "-J ok,-bad@b"},
     "ansible_ssh_common_args.yml: host 'h1': field 'ansible_ssh_common_args': jump host '-bad@b' must be "
     "[user@]host[:port]"),
    ({"ansible_ssh_common_args": "-J"},
     "ansible_ssh_common_args.yml: host 'h1': field 'ansible_ssh_common_args': jump host '' must be "
     "[user@]host[:port]"),
]


@pytest.mark.parametrize("v, message", CONNECTION_REFUSALS)
def test_connection_refusals_make_the_host_unusable_word_for_word(v, message):
    assert unusable(v) == message


def test_connection_fields_later_spelling_wins_and_paths_are_resolved():
    v = {"ansible_host": "10.0.0.1", "ansible_ssh_host": "10.0.0.2", "ansible_port": 22, "ansible_ssh_port": "2222",
         "ansible_user": "a", "ansible_ssh_user": "deploy", "ansible_private_key_file": "k1",
         "ansible_ssh_private_key_file": "keys/id", "ansible_become": "Yes ", "ansible_become_user": "root",
         "ansible_become_method": "sudo", "ansible_become_pass": "one", "ansible_become_password": "s3cret",
         "ansible_ssh_common_args": "-o ProxyJump=bastion", "ansible_ssh_extra_args": "-oProxyJump=u@[::1]:22",
         "ansible_connection": "smart", "ssh_config": "lab/ssh_config"}
    host = validate.build_host("h1", v, origins_of(v), [], BASE)
    assert host.unusable is None
    assert (host.address, host.port, host.user, host.key, host.become, host.become_user, host.become_password,
            host.proxy_jump, host.ssh_config, host.explicit_address) == (
        "10.0.0.2", 2222, "deploy", "/srv/inv/keys/id", True, "root", "one", "bastion",
        "/srv/inv/lab/ssh_config", True)
    assert "ansible_become_password" not in host.vars and "ansible_become_pass" not in host.vars
    assert host.vars["ansible_user"] == "a"


@pytest.mark.parametrize("value, become", [(True, True), (False, False), (1, True), (0, False), ("no", False),
                                           ("ON", True), ("t", True), ("0", False)])
def test_ansible_booleans(value, become):
    assert validate.build_host("h1", {"ansible_become": value}, {}, [], BASE).become is become


def test_jump_forms():
    def jump(args):
        return validate.build_host("h1", {"ansible_ssh_common_args": args}, {}, [], BASE).proxy_jump
    assert jump("-J a.test") == "a.test"
    assert jump("-Jb.test") == "b.test"
    assert jump("-o ProxyJump=u@c.test:2222,d.test") == "u@c.test:2222,d.test"
    assert jump("-o 'proxyjump d.test'") == "d.test"
    assert jump("") is None
    assert jump("-J X") == "X" and jump("-J [::1]") == "[::1]"


def test_a_host_named_only_gets_its_address_from_its_own_ssh_config(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_text("Host web1\n  HostName 10.0.0.5\n")
    two.write_text("Host web1\n  HostName 10.0.0.6\n")
    def address(config, name="web1"):
        host = validate.build_host(name, {"ssh_config": str(config)}, {}, [], BASE)
        return host.address, host.explicit_address
    assert address(one) == ("10.0.0.5", False) and address(two) == ("10.0.0.6", False)
    assert address(one, "web2") == ("web2", False)
    host = validate.build_host("web1", {"ssh_config": str(tmp_path / "nope")}, {}, [], BASE)
    assert host.unusable == f"{tmp_path}/nope: cannot read ssh_config: No such file or directory"


def test_named_by_inventory_name_only():
    host = validate.build_host("web1.test", {}, {}, [], BASE)
    assert (host.address, host.explicit_address, host.port, host.user, host.proxy_jump) == (
        "web1.test", True, None, None, None)
    absolute = validate.build_host("h1", {"ssh_config": "/etc/ssh_config", "ansible_host": "x"}, {}, [], BASE)
    assert absolute.ssh_config == "/etc/ssh_config"
    assert validate.build_host("-h", {}, {}, [], BASE).unusable == \
        "?: host '-h': field 'inventory name' must be a host name or an IP address, got '-h'"


@pytest.mark.parametrize("value, ok", [("a.test", True), ("a.test.", True), ("_srv.a", True), ("10.0.0.1", True),
                                       ("::1", True), ("", False), ("-a", False), ("a..b", False),
                                       ("a" * 64, False), ("a" * 63, True), (".".join(["a" * 63] * 4), False),
                                       (None, False)])
def test_host_or_address(value, ok):
    assert validate.host_or_address(value) is ok


def test_did_you_mean_only_near_names():
    validate._SUGGESTIONS.clear()       # remembered per name: computed again here
    assert refusal({"lbmetod": "x"}) == "lbmetod.yml: host 'h1': unknown field 'lbmetod' (did you mean 'lbmethod'?)"
    assert validate._closest("lbmetod") == "lbmethod"
    assert validate._closest("proxy_mdoe") == "proxy_mode"
    assert validate._closest("balancer_timeuot") == "balancer_timeout"
    assert validate._closest("tls") is None and validate._closest("apps2") == "apps"
    assert validate._closest("proxy_modes") is None and validate._closest("tls_name") is None
    assert validate._closest("lbmetho") == "lbmethod"       # a dropped last letter is a typo, not a plural
    assert validate._closest("tls_kxx") is None and validate._closest("lbmethxx") == "lbmethod"
    assert validate._closest("lbmetxxx") is None
    assert validate._distance("ab", "ba") == 1 and validate._distance("abc", "") == 3
    assert validate._distance("kitten", "sitting") == 3
    assert validate._distance("", "ab") == 2 and validate._distance("aaa", "a") == 2
