"""Every inventory error, each from load(): one line naming the file, the host or group, and the
field, with what was given. Also the merge order of vars, folders and the address rules."""
import copy

import pytest
import yaml

from provision.inventory import InventoryError, load

BASE = {"all": {"vars": {"proxy_mode": "balancer"}, "children": {
    "proxies": {"hosts": {"proxy": {"ansible_host": "10.0.0.10"}}},
    "backends": {"hosts": {"web1": {"ansible_host": "10.0.0.11",
                                    "apps": [{"name": "hello", "port": 8080, "message": "Hello world!"}]}}}}}}


def proxy_vars(data):
    return data["all"]["children"]["proxies"]["hosts"]["proxy"]


def app(data):
    return data["all"]["children"]["backends"]["hosts"]["web1"]["apps"][0]


def write(tmp_path, data):
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def broken(tmp_path, change):
    data = copy.deepcopy(BASE)
    change(data)
    path = write(tmp_path, data)
    try:
        inventory = load(path)
    except InventoryError as err:
        message = str(err)
    else:       # a host-level problem leaves the others usable, as Ansible does: that host says why
        messages = [h.unusable for h in inventory.hosts.values() if getattr(h, "unusable", None)]
        assert len(messages) == 1, f"loaded without error: {messages}"
        message = messages[0]
    assert "\n" not in message and message.startswith(f"{path}:")
    return message[len(str(path)) + 1:].strip()


ERRORS = [
    ("proxy_mode", lambda d: proxy_vars(d).update(proxy_mode="round"),
     "host 'proxy': field 'proxy_mode' must be one of single, balancer, got 'round'"),
    ("lbmethod", lambda d: proxy_vars(d).update(lbmethod="heartbeat"),
     "host 'proxy': field 'lbmethod' must be one of byrequests, bytraffic, bybusyness, got 'heartbeat'"),
    ("tls", lambda d: proxy_vars(d).update(tls="on"),
     "host 'proxy': field 'tls' must be one of off, self-signed, provided, acme, got 'on'"),
    ("acme without the terms", lambda d: proxy_vars(d).update(tls="acme", server_name="app.example.test",
                                                              acme_email="ops@example.test"),
     "host 'proxy': field 'acme_agree_tos' must be true with tls: acme (you accept the ACME CA's terms of service)"),
    ("acme terms refused", lambda d: proxy_vars(d).update(tls="acme", server_name="app.example.test",
                                                          acme_email="ops@example.test", acme_agree_tos=False),
     "host 'proxy': field 'acme_agree_tos' must be true with tls: acme (you accept the ACME CA's terms of service)"),
    ("acme without an email", lambda d: proxy_vars(d).update(tls="acme", server_name="app.example.test",
                                                             acme_agree_tos=True),
     "host 'proxy': field 'acme_email' must be an email address with tls: acme (the CA's contact), got None"),
    ("acme on a bare host name", lambda d: proxy_vars(d).update(tls="acme", acme_agree_tos=True,
                                                                acme_email="ops@example.test"),
     "host 'proxy': tls: acme: 'proxy' is not a DNS name an ACME CA can validate over HTTP-01 (no address, "
     "no wildcard, a dot in it): set server_name, sites or tls_names"),
    ("acme wildcard", lambda d: proxy_vars(d).update(tls="acme", acme_agree_tos=True, acme_email="ops@example.test",
                                                     server_name="app.example.test", tls_names=["*.example.test"]),
     "host 'proxy': tls: acme: '*.example.test' is not a DNS name an ACME CA can validate over HTTP-01 (no "
     "address, no wildcard, a dot in it): set server_name, sites or tls_names"),
    ("acme plain http directory", lambda d: proxy_vars(d).update(
        tls="acme", acme_agree_tos=True, acme_email="ops@example.test", server_name="app.example.test",
        acme_directory="http://ca.example.test/dir"),
     "host 'proxy': field 'acme_directory' must be an https:// ACME directory URL, got 'http://ca.example.test/dir'"),
    ("acme client", lambda d: proxy_vars(d).update(tls="acme", acme_agree_tos=True, acme_email="ops@example.test",
                                                   server_name="app.example.test", acme_client="certbot"),
     "host 'proxy': field 'acme_client' must be one of auto, control, got 'certbot'"),
    ("acme renew window", lambda d: proxy_vars(d).update(tls="acme", acme_agree_tos=True,
                                                         acme_email="ops@example.test", server_name="app.example.test",
                                                         acme_renew_window="a month"),
     "host 'proxy': field 'acme_renew_window' must be a duration such as 30d, 72h or 3600s, got 'a month'"),
    ("tls provided alone", lambda d: proxy_vars(d).update(tls="provided", tls_cert="c.pem"),
     "host 'proxy': field 'tls_cert'/'tls_key' are required with tls: provided"),
    ("tls_names", lambda d: proxy_vars(d).update(tls_names=["ok.test", "bad name"]),
     "host 'proxy': field 'tls_names[1]' must be a host name or address, got 'bad name'"),
    ("server_name", lambda d: proxy_vars(d).update(server_name="a b"),
     "host 'proxy': field 'server_name' is not a host name: 'a b'"),
    ("health_path", lambda d: proxy_vars(d).update(health_path="health"),
     "host 'proxy': field 'health_path' must be a URL path like /health, got 'health'"),
    ("extra directive", lambda d: proxy_vars(d).update(proxy_extra_directives=["ok", "two\nlines"]),
     "host 'proxy': field 'proxy_extra_directives[1]' must be one directive on one line"),
    ("extra directive blank", lambda d: proxy_vars(d).update(proxy_extra_directives=["  "]),
     "host 'proxy': field 'proxy_extra_directives[0]' must be one directive on one line"),
    ("private_address", lambda d: proxy_vars(d).update(private_address="web"),
     "host 'proxy': field 'private_address' is not an IP address: 'web'"),
    ("user", lambda d: proxy_vars(d).update(ansible_user="Root Admin"),
     "host 'proxy': field 'ansible_user' is not a valid user name: 'Root Admin'"),
    ("user not a string", lambda d: proxy_vars(d).update(ansible_user=5),
     "host 'proxy': field 'ansible_user' is not a valid user name: 5"),
    ("port zero", lambda d: proxy_vars(d).update(ansible_port=0),
     "host 'proxy': field 'ansible_port' must be a port number 1-65535, got 0"),
    ("port bool", lambda d: proxy_vars(d).update(ansible_port=True),
     "host 'proxy': field 'ansible_port' must be a port number 1-65535, got True"),
    ("apps not mappings", lambda d: d["all"]["children"]["backends"]["hosts"]["web1"].update(apps=["x"]),
     "host 'web1': field 'apps[0]' must be a mapping with name, port, message"),
    ("app unknown key", lambda d: app(d).update(colour="red"),
     "host 'web1': field 'apps[0].colour' is unknown (apps take message, name, port, or project/package with data_dir, env, files, health, keep_releases, release_command, requirements, secret_env, threads, timeout, workers, wsgi)"),
    ("app name", lambda d: app(d).update(name="Hello"),
     "host 'web1': field 'apps[0].name' must be lowercase letters, digits, - or _, got 'Hello'"),
    ("app port low", lambda d: app(d).update(port=80),
     "host 'web1': field 'apps[0].port' must be a port number 1024-65535, got 80"),
    ("app port high", lambda d: app(d).update(port=65536),
     "host 'web1': field 'apps[0].port' must be a port number 1024-65535, got 65536"),
    ("app port bool", lambda d: app(d).update(port=True),
     "host 'web1': field 'apps[0].port' must be a port number 1024-65535, got True"),
    ("app message empty", lambda d: app(d).update(message=""),
     "host 'web1': field 'apps[0].message' must be one line of 1-200 printable characters"),
    ("app message long", lambda d: app(d).update(message="x" * 201),
     "host 'web1': field 'apps[0].message' must be one line of 1-200 printable characters"),
    ("app message control", lambda d: app(d).update(message="a\tb"),
     "host 'web1': field 'apps[0].message' must be one line of 1-200 printable characters"),
    ("two apps one name", lambda d: d["all"]["children"]["backends"]["hosts"]["web1"]["apps"].append(
        {"name": "hello", "port": 8081, "message": "x"}), "host 'web1': field 'apps[1].name': two apps named 'hello'"),
]


@pytest.mark.parametrize("name,change,expected", ERRORS, ids=[e[0] for e in ERRORS])
def test_every_error_names_where_and_what(tmp_path, name, change, expected):
    assert broken(tmp_path, change) == expected


def test_at_the_limits_it_loads(tmp_path):
    data = copy.deepcopy(BASE)
    proxy_vars(data).update(ansible_port="2222", server_name="*.example.test", health_path="/", tls_names=["a.test"],
                            proxy_extra_directives=["ProxyTimeout\t60"], private_address="10.1.0.10",
                            ansible_user="deploy$")
    app(data).update(port=65535, message="m" * 200)
    inv = load(write(tmp_path, data))
    proxy = inv.hosts["proxy"]
    assert (proxy.port, proxy.user, proxy.private_address, proxy.address) == (2222, "deploy$", "10.1.0.10",
                                                                              "10.0.0.10")
    app(data).update(port=1024)
    assert load(write(tmp_path, data)).hosts["web1"].apps[0]["port"] == 1024




def test_ssh_config_hosts_need_no_address(tmp_path):
    data = copy.deepcopy(BASE)
    data["all"]["vars"]["ssh_config"] = "lab/ssh_config"
    del proxy_vars(data)["ansible_host"]
    inv = load(write(tmp_path, data))
    proxy = inv.hosts["proxy"]
    assert (proxy.address, proxy.explicit_address, proxy.ssh_config) == (
        "proxy", False, str((tmp_path / "lab/ssh_config").resolve()))
    assert inv.hosts["web1"].explicit_address is True
    data["all"]["vars"]["ssh_config"] = "/abs/ssh_config"
    assert load(write(tmp_path, data)).hosts["proxy"].ssh_config == "/abs/ssh_config"


def test_select_skips_blanks_and_repeats(tmp_path):
    inv = load(write(tmp_path, BASE))
    assert [h.name for h in inv.select(" web1, ,backends,proxy")] == ["web1", "proxy"]
    assert [h.name for h in inv.select("")] == list(inv.hosts) == ["web1", "proxy"]   # safe_dump sorts keys


def test_tls_provided_with_both_files_and_mixed_case_names_load(tmp_path):
    data = copy.deepcopy(BASE)
    proxy_vars(data).update(tls="provided", tls_cert="c.pem", tls_key="k.pem", tls_names=["Alt.Example.TEST", "::1"])
    proxy = load(write(tmp_path, data)).hosts["proxy"]
    assert (proxy.vars["tls_cert"], proxy.vars["tls_key"], proxy.vars["tls_names"]) == (
        "c.pem", "k.pem", ["Alt.Example.TEST", "::1"])
    proxy_vars(data).pop("tls_cert")
    assert broken(tmp_path, lambda d: d.update(data)) == \
        "host 'proxy': field 'tls_cert'/'tls_key' are required with tls: provided"


def test_an_unknown_group_has_no_hosts(tmp_path):
    assert load(write(tmp_path, BASE)).group("nope") == []


def test_mixed_case_names_paths_spaces_and_port_limits_load(tmp_path):
    data = copy.deepcopy(BASE)
    proxy_vars(data).update(server_name="WWW.Example.test", health_path="/Health/z", ansible_port=65535,
                            proxy_extra_directives=["ProxyTimeout 60"])
    d = data["all"]["children"]["backends"]["hosts"]["web1"]
    d["ansible_port"] = 1
    inv = load(write(tmp_path, data))
    assert (inv.hosts["proxy"].port, inv.hosts["web1"].port) == (65535, 1)
    assert inv.hosts["proxy"].vars["server_name"] == "WWW.Example.test"
    assert broken(tmp_path, lambda x: (x.update(copy.deepcopy(data)), proxy_vars(x).update(ansible_port=65536))) == \
        "host 'proxy': field 'ansible_port' must be a port number 1-65535, got 65536"



def test_an_empty_group_and_an_unknown_key_message_in_full(tmp_path):
    data = copy.deepcopy(BASE)
    data["all"]["children"]["spare"] = None
    inv = load(write(tmp_path, data))
    assert inv.group("spare") == [] and "spare" in inv.groups
    data["all"]["children"]["spare"] = {"kids": {}}
    assert broken(tmp_path, lambda x: x.update(copy.deepcopy(data))) == \
        "group 'spare': unknown key 'kids' (expected hosts, children or vars)"
