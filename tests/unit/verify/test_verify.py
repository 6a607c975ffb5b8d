"""provision.verify's pure parts: the plan from an inventory, the ssh_config (resolved by OpenSSH
itself with `ssh -G`, no connection), the vhost checks on the real templates, the answer checks."""
import shutil
import subprocess
import textwrap
from types import SimpleNamespace

import pytest

from provision import verify
from provision.inventory import load
from provision.platforms import DEBIAN, REDHAT
from provision.roles import proxy as proxy_role

INVENTORY = """
all:
  children:
    proxies:
      hosts:
        proxy: {ansible_host: 10.0.0.10, server_name: www.example.test}
        proxy2: {ansible_host: 10.0.0.20, ansible_user: deploy, proxy_mode: single}
    backends:
      vars:
        ansible_ssh_private_key_file: keys/id
      hosts:
        web1:
          ansible_host: 10.0.0.11
          ansible_port: 2222
          private_address: 192.168.5.11
          apps:
          - {name: hello, port: 8080, message: Hello world!}
          - {name: howdy, port: 8081, message: Howdy world!}
        web2:
          ansible_host: 10.0.0.12
          apps: [{name: hi, port: 9000, message: Hi!}]
"""


def inventory(tmp_path, text=INVENTORY):
    p = tmp_path / "inv.yml"
    p.write_text(textwrap.dedent(text))
    return load(p)


def no_lookup(host):
    return {}


def test_plan_has_one_check_per_proxy_and_per_app(tmp_path):
    plan = verify.plan(inventory(tmp_path), lookup=no_lookup)
    assert [p.name for p in plan.proxies] == ["proxy", "proxy2"]
    assert [a.id for a in plan.apps] == ["web1-hello", "web1-howdy", "web2-hi"]
    hello = plan.apps[0]
    assert (hello.unit, hello.user) == ("provision-app-hello.service", "app-hello")
    assert hello.member.url() == "http://192.168.5.11:8080"          # the private address, not ansible_host
    p = plan.proxies[0]
    assert (p.address, p.mode, p.server_name, p.requests) == ("10.0.0.10", "balancer", "www.example.test", 6)
    assert [m.app for m in p.members] == ["hello", "howdy", "hi"]   # the proxy role's order


def test_plan_mode_comes_from_option_then_proxy_mode(tmp_path):
    inv = inventory(tmp_path)
    assert [p.mode for p in verify.plan(inv, lookup=no_lookup).proxies] == ["balancer", "single"]
    assert [p.mode for p in verify.plan(inv, mode="single", lookup=no_lookup).proxies] == ["single", "single"]
    with pytest.raises(ValueError, match="--mode must be one of"):
        verify.plan(inv, mode="roundrobin", lookup=no_lookup)


def test_plan_limit_keeps_all_members_for_the_proxy(tmp_path):
    plan = verify.plan(inventory(tmp_path), limit="proxy,web2", lookup=no_lookup)
    assert [h.name for h in plan.hosts] == ["proxy", "web2"]
    assert [a.id for a in plan.apps] == ["web2-hi"]
    assert len(plan.proxies[0].members) == 3


def test_specs_use_sudo_only_for_a_non_root_login(tmp_path):
    plan = verify.plan(inventory(tmp_path), lookup=lambda h: {"user": "root"})
    specs = {p.name: p.spec for p in plan.proxies}
    assert specs == {"proxy": "ssh://proxy", "proxy2": "ssh://proxy2?sudo=true"}


def test_address_from_ssh_config_when_the_inventory_has_none(tmp_path):
    (tmp_path / "ssh_config").write_text("Host proxy\n    HostName 10.9.9.9\n    User admin\n")
    inv = inventory(tmp_path, """
        all:
          vars: {ssh_config: ssh_config}
          children:
            proxies: {hosts: {proxy: {}}}
            backends: {hosts: {web1: {ansible_host: 10.0.0.11, apps: [{name: a, port: 8080, message: A}]}}}
        """)
    (p,) = verify.plan(inv).proxies
    assert (p.address, p.spec) == ("10.9.9.9", "ssh://proxy?sudo=true")


@pytest.mark.skipif(not shutil.which("ssh"), reason="needs the OpenSSH client")
def test_ssh_config_gives_openssh_deploys_settings(tmp_path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "ssh_config").write_text(textwrap.dedent("""\
        Host web2
            HostName 10.0.0.99
            User admin
            UserKnownHostsFile /lab/known_hosts
            StrictHostKeyChecking no
        """))
    inv = inventory(tmp_path, INVENTORY.replace("all:\n", "all:\n  vars: {ssh_config: ssh_config}\n", 1))
    text = verify.ssh_config_text(inv.hosts.values(), "/tmp/pv-x")
    (tmp_path / "generated").write_text(text)

    def resolved(name):
        out = subprocess.run(["ssh", "-G", "-F", str(tmp_path / "generated"), name],
                             capture_output=True, text=True, check=True).stdout
        return {k: v for k, _, v in (line.partition(" ") for line in out.splitlines())}
    web1 = resolved("web1")
    assert (web1["hostname"], web1["port"]) == ("10.0.0.11", "2222")
    assert web1["identityfile"] == str(tmp_path / "keys" / "id")
    assert web1["controlpath"] == "/tmp/pv-x/web1" and web1["controlmaster"] == "auto"
    web2 = resolved("web2")
    # the inventory's address wins, the ssh_config fills the rest; host keys are always checked
    assert (web2["hostname"], web2["user"], web2["stricthostkeychecking"]) == ("10.0.0.12", "admin", "true")
    assert web2["userknownhostsfile"] == "/lab/known_hosts"
    assert resolved("proxy2")["user"] == "deploy"


def rendered(tmp_path, mode, platform=DEBIAN):
    inv = inventory(tmp_path)
    options = SimpleNamespace(mode=mode)
    host = inv.hosts["proxy"]
    return (proxy_role.vhost(host, platform, options), proxy_role.routes(host, platform, inv, options)[platform.routes_path],
            verify.plan(inv, mode=mode, lookup=no_lookup).proxies[0])


@pytest.mark.parametrize("mode", ["balancer", "single"])
@pytest.mark.parametrize("platform", [DEBIAN, REDHAT], ids=["debian", "redhat"])
def test_deployed_templates_have_what_the_mode_needs(tmp_path, mode, platform):
    vhost, routes, check = rendered(tmp_path, mode, platform)
    assert verify.vhost_problems(vhost, routes, platform.routes_path, check) == []


def test_other_mode_is_reported(tmp_path):
    vhost, routes, _ = rendered(tmp_path, "single")
    _, _, balancer = rendered(tmp_path, "balancer")
    problems = verify.vhost_problems(vhost, routes, DEBIAN.routes_path, balancer)
    assert "routes lack '<Proxy balancer://mycluster>'" in problems
    assert "routes lack 'BalancerMember http://10.0.0.12:9000'" in problems
    assert "routes lack 'ProxyPass / balancer://mycluster/'" in problems


@pytest.mark.parametrize("edit, problem", [
    (("ProxyPreserveHost On", "# ProxyPreserveHost On"), "routes lack 'ProxyPreserveHost On'"),
    (("ProxyPreserveHost On", "ProxyPreserveHost Off"), "routes lack 'ProxyPreserveHost On'"),
    ((":8080 ", ":8089 "), "routes lack 'BalancerMember http://192.168.5.11:8080'"),
    ((":8080 ", ":8089 "), "routes have unexpected 'BalancerMember http://192.168.5.11:8089'"),
    (("ProxyPassReverse / balancer://mycluster/", ""), "routes lack 'ProxyPassReverse / balancer://mycluster/'"),
])
def test_edited_routes_are_reported(tmp_path, edit, problem):
    vhost, routes, check = rendered(tmp_path, "balancer")
    assert edit[0] in routes
    assert problem in verify.vhost_problems(vhost, routes.replace(*edit), DEBIAN.routes_path, check)


def test_vhost_without_the_routes_include_is_reported(tmp_path):
    vhost, routes, check = rendered(tmp_path, "balancer")
    problems = verify.vhost_problems(vhost.replace("Include", "#Include"), routes, DEBIAN.routes_path, check)
    assert problems == [f"vhost lacks 'Include {DEBIAN.routes_path}'"]


def test_single_mode_wrong_port_is_reported(tmp_path):
    vhost, routes, check = rendered(tmp_path, "single")
    problems = verify.vhost_problems(vhost, routes.replace(":8080/", ":8089/"), DEBIAN.routes_path, check)
    assert problems == ["routes lack 'ProxyPass / http://192.168.5.11:8080/'",
                        "routes lack 'ProxyPassReverse / http://192.168.5.11:8080/'"]


def checks(tmp_path, mode):
    return verify.plan(inventory(tmp_path), mode=mode, lookup=no_lookup).proxies[0]


@pytest.mark.parametrize("answers", [
    ["Hello world!", "Howdy world!", "Hi!"] * 2,
    ["Howdy world!", "Hi!", "Hello world!", "Howdy world!"],
    ["Hi!", "Hello world!"],
])
def test_balancer_answers_cycle_from_any_start(tmp_path, answers):
    assert verify.rotation_problem(answers, checks(tmp_path, "balancer")) is None


@pytest.mark.parametrize("answers", [
    ["Hello world!"] * 6,                                                      # one app only
    ["Hello world!", "Hi!", "Howdy world!"] * 2,                                # wrong order
    ["Hello world!", "Howdy world!", "HTTP 503", "Hello world!", "Howdy world!", "HTTP 503"],
    ["Hello world!", "Howdy world!", "Hi!", "Hello world!", "Hola!", "Hi!"],   # a changed message
])
def test_balancer_answers_that_do_not_cycle(tmp_path, answers):
    problem = verify.rotation_problem(answers, checks(tmp_path, "balancer"))
    assert problem and "do not cycle through" in problem


def test_single_answers_all_come_from_the_first_app(tmp_path):
    check = checks(tmp_path, "single")
    assert verify.rotation_problem(["Hello world!"] * 6, check) is None
    assert "expected all 'Hello world!'" in verify.rotation_problem(["Hello world!", "Howdy world!"], check)


def test_redirect_must_come_back_on_the_proxy_address():
    assert verify.redirect_problem(302, "http://10.0.0.10/whoami", "10.0.0.10") is None
    assert "not to the proxy's address" in verify.redirect_problem(302, "http://192.168.5.11:8080/whoami",
                                                                    "10.0.0.10")
    assert verify.redirect_problem(200, "", "10.0.0.10") == "/go answered 200, not a redirect"


def test_tcp_listeners():
    sockets = ["tcp://0.0.0.0:22", "tcp://:::80", "tcp://10.0.0.11:8080", "udp://0.0.0.0:80",
               "unix:///run/systemd/private"]
    assert verify.tcp_listeners(sockets, 80) == ["::"]
    assert verify.tcp_listeners(sockets, 8080) == ["10.0.0.11"]
    assert verify.tcp_listeners(sockets, 8081) == []


def test_missing_modules_after_a_warning_line():
    text = ("AH00558: apache2: Could not reliably determine the server's fully qualified domain name\n"
            "Loaded Modules:\n core_module (static)\n proxy_module (shared)\n"
            " proxy_http_module (shared)\n lbmethod_byrequests_module (shared)\n")
    assert verify.missing_modules(verify.parse_apache_modules(text)) == ["proxy_balancer_module"]


def test_pytest_args_carry_the_options():
    args = verify.pytest_args("inv.yml", limit="web1", mode="single", junit="r.xml")
    assert args[0].endswith("tests/infra")
    assert args[1:3] == ["--inventory", "inv.yml"]
    assert "--limit" in args and "--mode" in args and "--junitxml" in args
    suite = str(verify.SUITE)
    assert verify.pytest_args("inv.yml")[1:] == [
        "--inventory", "inv.yml", "-c", f"{suite}/pytest.ini", "--rootdir", suite, "--confcutdir", suite,
        "-p", "no:cacheprovider", "--tb=short"]
    with_vars = verify.pytest_args("inv.yml", extra_vars=["a=1", "@v.yml"], unreachable="/tmp/u.json")
    assert with_vars[-6:] == ["--extra-vars", "a=1", "--extra-vars", "@v.yml", "--unreachable", "/tmp/u.json"]


def test_enabled_modules_from_the_module_config():
    debian = "alias.load\nproxy.conf\nproxy.load\nproxy_http.load\nlbmethod_byrequests.load\n"
    assert verify.missing_modules(verify.enabled_modules(DEBIAN, debian)) == ["proxy_balancer_module"]
    redhat = ("LoadModule proxy_module modules/mod_proxy.so\n#LoadModule proxy_http_module x.so\n"
              "  LoadModule proxy_balancer_module modules/mod_proxy_balancer.so\n"
              "LoadModule lbmethod_byrequests_module modules/mod_lbmethod_byrequests.so\n")
    assert verify.missing_modules(verify.enabled_modules(REDHAT, redhat)) == ["proxy_http_module"]


# -- values quoted as ssh_config requires; jump hops as strict as deploy (review items 3, 10) ---

def resolve(config_text: str, tmp_path, name: str) -> dict:
    (tmp_path / "generated").write_text(config_text)
    out = subprocess.run(["ssh", "-G", "-F", str(tmp_path / "generated"), name],
                         capture_output=True, text=True, check=True).stdout
    return {k: v for k, _, v in (line.partition(" ") for line in out.splitlines())}


def test_ssh_config_refuses_a_value_that_adds_a_line():
    from provision.errors import UserError
    from provision.inventory import Host
    evil = Host("web1", "10.0.0.11", key="k\nProxyCommand sh -c 'id > /tmp/x'")
    with pytest.raises(UserError, match=r"host 'web1': IdentityFile .*cannot go into an ssh_config line"):
        verify.ssh_config_text([evil], "/tmp/pv-x")
    for bad in ('k"x', "k\\x", "k\rx"):
        with pytest.raises(UserError):
            verify.ssh_config_text([Host("web1", "10.0.0.11", key=bad)], "/tmp/pv-x")


@pytest.mark.skipif(not shutil.which("ssh"), reason="needs the OpenSSH client")
def test_ssh_config_quotes_paths_as_openssh_reads_them(tmp_path):
    from provision.inventory import Host
    key = str(tmp_path / "my keys" / "id #1 %d")
    host = Host("web1", "10.0.0.11", user="deploy", port=2222, key=key)
    got = resolve(verify.ssh_config_text([host], str(tmp_path / "ctl dir")), tmp_path, "web1")
    assert got["identityfile"] == key.replace("%", "%%")     # ssh -G shows tokens unexpanded: %% is one %
    assert got["controlpath"] == str(tmp_path / "ctl dir" / "web1")
    assert (got["user"], got["port"], got.get("proxycommand")) == ("deploy", "2222", None)


@pytest.mark.skipif(not shutil.which("ssh"), reason="needs the OpenSSH client")
def test_jump_hop_outside_the_inventory_is_checked_strictly(tmp_path):
    """A bastion only the user's ssh_config knows, marked StrictHostKeyChecking no there: verify's
    hop checks its key as deploy does (deploy refuses an unknown hop key)."""
    from provision.inventory import Host
    (tmp_path / "user_config").write_text(textwrap.dedent("""\
        Host bastion
            HostName 10.0.0.1
            StrictHostKeyChecking no
            UserKnownHostsFile /dev/null
        Host web1
            ProxyJump bastion
        """))
    host = Host("web1", "10.0.0.11", ssh_config=str(tmp_path / "user_config"))
    text = verify.ssh_config_text([host], "/tmp/pv-x")
    assert resolve(text, tmp_path, "web1")["proxyjump"] == "bastion"
    assert resolve(text, tmp_path, "bastion")["stricthostkeychecking"] == "true"
    assert resolve(text, tmp_path, "web1")["stricthostkeychecking"] == "true"


def test_verify_takes_several_inventories_merged_in_order(tmp_path, monkeypatch):
    """`provision verify -i a -i b` (and `invoke verify`) gives both to the checks, whose conftest loads them
    merged as deploy does."""
    import os
    import sys
    from invoke import Context
    import tasks
    base = tmp_path / "base.ini"
    base.write_text("[proxies]\nproxy ansible_host=10.0.0.1\n[backends]\n"
                    "web1 ansible_host=10.0.0.2 apps=\"[{'name': 'hello', 'port': 8080, 'message': 'Hi'}]\"\n")
    extra = tmp_path / "extra.yml"
    extra.write_text("backends:\n  hosts:\n    web2:\n      ansible_host: 10.0.0.3\n"
                     "      apps: [{name: howdy, port: 8081, message: Howdy}]\n")
    called = {}
    monkeypatch.setattr(verify, "main", lambda **kwargs: called.update(kwargs) or 0)
    tasks.COMMANDS["verify"].body(Context(), inventory=[str(base), str(extra)])
    assert called["inventory"] == [str(base), str(extra)]
    args = verify.pytest_args(called["inventory"], extra=["--collect-only", "-q"])
    assert args[1:5] == ["--inventory", str(base), "--inventory", str(extra)]
    collected = subprocess.run([sys.executable, "-m", "pytest", *args], capture_output=True, text=True,
                               cwd=verify.SUITE.parents[1], env={**os.environ, "PYTHONPATH": str(verify.SUITE.parents[1])})
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "[web1-hello]" in collected.stdout and "[web2-howdy]" in collected.stdout
