"""The inventory's connection variables reach the transport (issue 11): ssh options from
ansible_ssh_common_args/extra_args, ProxyJump hops with strict host keys, become and its password."""
import textwrap
from types import SimpleNamespace

import paramiko
import pytest

from provision import verify
from provision.inventory import Host, InventoryError, load
from provision.transport import HostConnection, RecordNewHostKey, _chain, _unreachable

from test_inventory_formats import one_line_error, write


def proxy_with(tmp_path, **variables) -> Host:
    line = " ".join(f"{k}={v}" for k, v in variables.items())
    inv = load(write(tmp_path / "hosts", f"[proxies]\nproxy ansible_host=10.0.0.1 {line}\n"))
    return inv.hosts["proxy"]


@pytest.mark.parametrize("common,extra,jump", [
    ("'-o ProxyJump=admin@bastion:2222'", None, "admin@bastion:2222"),
    ("'-J bastion'", None, "bastion"),
    ("-oProxyJump=a,b", None, "a,b"),
    ("\"-o 'ProxyJump bastion'\"", None, "bastion"),
    (None, "'-J 10.0.0.9'", "10.0.0.9"),
    # both: common comes first on ssh's command line, and OpenSSH keeps an option's first value
    ("'-o ProxyJump=first'", "'-J second'", "first"),
    ("'-o ProxyJump=none'", None, "none"),
])
def test_proxy_jump_spellings(tmp_path, common, extra, jump):
    variables = {k: v for k, v in (("ansible_ssh_common_args", common), ("ansible_ssh_extra_args", extra)) if v}
    host = proxy_with(tmp_path, **variables)
    assert (host.unusable, host.proxy_jump) == (None, jump)


def test_safe_options_are_mapped_and_multiplexing_is_harmless(tmp_path):
    host = proxy_with(tmp_path, ansible_ssh_common_args="'-o ControlMaster=auto -o ControlPersist=60s "
                      "-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=keys/known'")
    assert host.unusable is None
    assert (host.host_key_checking, host.known_hosts) == ("accept-new", str(tmp_path / "keys" / "known"))


@pytest.mark.parametrize("args,expected", [
    ("-o StrictHostKeyChecking=no", "StrictHostKeyChecking=no is not supported: host keys are always checked"),
    ("-o StrictHostKeyChecking=off -o UserKnownHostsFile=known", "StrictHostKeyChecking=off is not supported"),
    ("-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=accept-new",
     "UserKnownHostsFile: known_hosts /dev/null is a character device, not a regular file"),
    ("-o ForwardAgent=yes", "ssh option 'ForwardAgent' is not supported (only ProxyJump"),
    ("-C -o ProxyJump=b", "'-C' is not supported"),
    ("-o ProxyJump", "-o 'ProxyJump' needs a value"),
    ("-J 'a b'", "jump host 'a b' must be [user@]host[:port]"),
    ("-o 'ProxyJump=a", "No closing quotation"),
])
def test_options_we_cannot_honour_are_one_line_naming_host_and_field(tmp_path, monkeypatch, args, expected):
    inv = write(tmp_path / "hosts.yml", f"""
        all:
          children:
            proxies: {{hosts: {{proxy: {{ansible_host: 10.0.0.1, ansible_ssh_common_args: "{args}"}}}}}}
            backends: {{hosts: {{web1: {{ansible_host: 10.0.0.2, apps: [{{name: a, port: 8080, message: Hi}}]}}}}}}
    """)
    error = one_line_error(inv, monkeypatch)
    assert error.startswith(f"error: {inv}: host 'proxy': field 'ansible_ssh_common_args': ") and expected in error


@pytest.mark.parametrize("variables,password", [
    ({"ansible_become_pass": "pw-one"}, "pw-one"),
    ({"ansible_become_password": "pw-one", "ansible_become_pass": "pw-two"}, "pw-two"),     # sudo's vars order
    ({"ansible_become_pass": "pw-two", "ansible_sudo_pass": "pw-three"}, "pw-three"),
])
def test_become_password_spellings_and_the_one_that_wins(tmp_path, variables, password):
    host = proxy_with(tmp_path, ansible_become="true", **variables)
    assert (host.become, host.become_password) == (True, password)
    assert password not in repr(host) and not set(variables) & set(host.vars)
    conn = HostConnection(host, sudo_password="from-the-prompt")
    assert conn._sudo_password == password       # the host's own wins over -K
    assert HostConnection(proxy_with(tmp_path), sudo_password="p")._sudo_password == "p"


@pytest.mark.parametrize("variable,value,expected", [
    ("ansible_become_user", "postgres", "field 'ansible_become_user' is 'postgres'; the roles run as root"),
    ("ansible_become_method", "doas", "field 'ansible_become_method' is 'doas'; only sudo is supported"),
    ("ansible_become", "maybe", "field 'ansible_become' must be a boolean"),
])
def test_become_we_cannot_honour_names_host_and_field(tmp_path, variable, value, expected):
    inv = load(write(tmp_path / "hosts", f"[proxies]\nproxy ansible_host=10.0.0.1 {variable}={value}\n"))
    with pytest.raises(InventoryError, match=f"^{tmp_path / 'hosts'}:2: host 'proxy': {expected}"):
        inv.select("proxy")


def test_become_false_with_a_non_root_login_is_refused_before_any_exec(tmp_path):
    conn = HostConnection(proxy_with(tmp_path, ansible_become="no", ansible_user="deploy"))
    conn._conn, conn.user = SimpleNamespace(), "deploy"     # as if open: run_script must not exec
    conn.open = lambda: conn
    result = conn.run_script("id")
    assert result.rc == 1 and "ansible_become is false, but the login user 'deploy' is not root" in result.stderr
    assert conn.execs == 0


def lab_like_config(tmp_path) -> str:
    path = tmp_path / "ssh_config"
    path.write_text(textwrap.dedent(f"""\
        Host bastion
            HostName 10.0.0.5
            User jumper
            Port 2200
            UserKnownHostsFile {tmp_path}/bastion_known
        Host inner
            HostName 10.0.0.6
            UserKnownHostsFile {tmp_path}/inner_known
        Host web2
            HostName 10.0.0.12
            UserKnownHostsFile {tmp_path}/web_known
            ProxyJump ignored-when-the-inventory-names-one
        """))
    return str(path)


def gateways(host: Host) -> tuple[HostConnection, list]:
    """The connection as open() builds it, its hops' host-key policies set, without connecting."""
    from fabric import Config, Connection
    conn = HostConnection(host)
    config = Config(runtime_ssh_path=host.ssh_config)
    fabric_conn = Connection(host.name, config=config, gateway=conn._jump_hops(config))
    conn._check_host_keys(fabric_conn, config.base_ssh_config.lookup(host.name))
    return conn, _chain(fabric_conn)


def test_jump_hops_in_the_order_written_each_from_ssh_config_with_strict_keys(tmp_path):
    host = Host("web2", "10.0.0.12", ssh_config=lab_like_config(tmp_path), proxy_jump="bastion,root@inner:2222")
    _, chain = gateways(host)
    # web2 <- inner <- bastion: bastion is reached first, as OpenSSH's -J bastion,inner does
    assert [(c.host, c.user, int(c.port)) for c in chain[1:]] == [("10.0.0.6", "root", 2222),
                                                                   ("10.0.0.5", "jumper", 2200)]
    assert chain[-1].gateway is None        # and web2's own ProxyJump in ssh_config gave way to the inventory's
    for hop in chain:
        assert isinstance(hop.client._policy, paramiko.RejectPolicy)    # unknown keys refused on every hop


def test_inventory_known_hosts_and_accept_new_apply_to_the_host_not_its_hops(tmp_path):
    host = Host("web2", "10.0.0.12", ssh_config=lab_like_config(tmp_path), proxy_jump="bastion",
                known_hosts=f"{tmp_path}/inv_known", host_key_checking="accept-new")
    _, (target, hop) = gateways(host)
    assert isinstance(target.client._policy, RecordNewHostKey)
    assert target.client._policy.known_hosts == tmp_path / "inv_known"
    assert isinstance(hop.client._policy, paramiko.RejectPolicy)


def test_no_inventory_jump_leaves_ssh_config_and_none_turns_it_off(tmp_path):
    config = lab_like_config(tmp_path)
    conn = HostConnection(Host("web2", "10.0.0.12", ssh_config=config))
    assert conn._jump_hops(None) is None
    assert HostConnection(Host("web2", "10.0.0.12", ssh_config=config, proxy_jump="none"))._jump_hops(None) is False


def test_an_unknown_hop_key_names_the_hop_and_its_known_hosts():
    known = {"10.0.0.12": "/inv/known", "10.0.0.5": "/lab/bastion_known"}
    exc = paramiko.SSHException("Server '[10.0.0.5]:2200' not found in known_hosts")
    assert str(_unreachable(exc, "10.0.0.12", 22, known)) == (
        "host key for 10.0.0.5 (a ProxyJump hop of 10.0.0.12) is unknown (not in /lab/bastion_known); "
        "add it, or pass --accept-new-host-keys")
    own = paramiko.SSHException("Server '10.0.0.12' not found in known_hosts")
    assert "host key for 10.0.0.12 is unknown (not in /inv/known)" in str(_unreachable(own, "10.0.0.12", 22, known))
    key = paramiko.RSAKey.generate(1024)
    changed = paramiko.BadHostKeyException("[10.0.0.5]:2200", key, key)
    assert "expected per /lab/bastion_known" in str(_unreachable(changed, "10.0.0.12", 22, known))


def test_verify_ssh_config_carries_the_inventory_jump_and_known_hosts(tmp_path):
    from test_verify import resolve
    import shutil
    if not shutil.which("ssh"):
        pytest.skip("needs the OpenSSH client")
    host = Host("web2", "10.0.0.12", ssh_config=lab_like_config(tmp_path), proxy_jump="bastion",
                known_hosts=f"{tmp_path}/a {tmp_path}/b", host_key_checking="accept-new")
    got = resolve(verify.ssh_config_text([host], "/tmp/pv-x"), tmp_path, "web2")
    assert got["proxyjump"] == "bastion"
    assert got["userknownhostsfile"] == f"{tmp_path}/a {tmp_path}/b"
    assert got["stricthostkeychecking"] == "accept-new"
    assert resolve(verify.ssh_config_text([host], "/tmp/pv-x"), tmp_path, "bastion")["stricthostkeychecking"] == "true"


@pytest.mark.parametrize("variable", ["ansible_password", "ansible_ssh_pass", "ansible_ssh_password"])
def test_ssh_password_login_is_refused_in_one_line_without_the_password(tmp_path, variable):
    host = proxy_with(tmp_path, **{variable: "s3cr3t-Pa55"})
    assert host.unusable == (f"{tmp_path / 'hosts'}:2: host 'proxy': field {variable!r} is set, but SSH password "
                             "login is not supported: use a key (ansible_ssh_private_key_file) or an agent")
    assert "s3cr3t" not in repr(host)
