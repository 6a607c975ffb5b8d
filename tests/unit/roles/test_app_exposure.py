"""Apps are reachable through the proxies only (security review, item 6): they bind one specific
address, never a wildcard, and on RedHat firewalld opens their ports to the proxies' addresses
only. Planned on captured CentOS 7 facts (tests/unit/test_centos7_plan.centos7_output)."""
from pathlib import Path

import pytest

from provision import deploy, facts as factlib
from provision.inventory import load
from provision.resources import FirewalldPortFrom, rich_rule
from provision.roles import backends

from test_centos7_plan import Opts, centos7_output, fake_wheels
from tests.support.refusal import deploy_refusal

ROOT = Path(__file__).resolve().parents[3]
RULE = 'rule family="ipv4" source address="10.123.0.10" port port="8080" protocol="tcp" accept'
# A proxy and one backend host running both apps (inventory/tutorial.yml is one server).
TWO_HOSTS = """
all:
  vars:
    ssh_config: ../.lab/ssh_config
  children:
    proxies:
      hosts:
        proxy:
          ansible_host: 10.123.0.10
    backends:
      hosts:
        web1:
          ansible_host: 10.123.0.11
          apps:
          - {name: hello, port: 8080, message: Hello world!}
          - {name: howdy, port: 8081, message: Howdy world!}
"""


@pytest.fixture
def inventory(tmp_path):
    (tmp_path / "inv.yml").write_text(TWO_HOSTS)
    return load(tmp_path / "inv.yml")


def backend_plan(inventory, text):
    f = factlib.parse(text)
    resources = backends.resources(inventory.hosts["web1"], f.platform, inventory, Opts(wheels=fake_wheels))
    return {c.label: c for c in (r.plan(f) for r in resources)}


def with_firewall(text, ports="", rules=()):
    return text.replace("@@@ firewalld\nrunning\ndhcpv6-client ssh\n",
                        "@@@ firewalld\nrunning\ndhcpv6-client ssh\n" + f"ports {ports}\n" +
                        "".join(r + "\n" for r in rules))


def test_rich_rule_spelled_as_firewalld_prints_it():
    assert rich_rule("10.123.0.10", "8080/tcp") == RULE
    assert rich_rule("fd00::10", "8081/tcp").startswith('rule family="ipv6" source address="fd00::10"')


def test_centos7_backend_opens_app_ports_to_the_proxy_only(inventory):
    by = backend_plan(inventory, centos7_output())
    label = "firewalld port 8080/tcp from 10.123.0.10"
    assert by[label].script == f"firewall-cmd -q --permanent --add-rich-rule='{RULE}'\nfirewall-cmd -q --reload"
    assert not any("--add-port" in c.script for c in by.values())


def test_centos7_backend_closes_a_zone_wide_opening_and_stale_rules(inventory):
    stale = RULE.replace("10.123.0.10", "10.123.0.99")
    text = with_firewall(centos7_output(), ports="8080/tcp 8081/tcp", rules=[RULE, stale])
    script = backend_plan(inventory, text)["firewalld port 8080/tcp from 10.123.0.10"].script
    assert "--add-rich-rule" not in script
    assert f"--remove-rich-rule='{stale}'" in script and "--remove-port=8080/tcp" in script


def test_centos7_backend_with_the_rules_in_place_changes_nothing(inventory):
    rules = [RULE, RULE.replace('port="8080"', 'port="8081"')]
    by = backend_plan(inventory, with_firewall(centos7_output(), rules=rules))
    for port in (8080, 8081):
        assert not by[f"firewalld port {port}/tcp from 10.123.0.10"].changed


def test_facts_read_rich_rules_apart_from_services():
    f = factlib.parse(with_firewall(centos7_output(), ports="22/tcp", rules=[RULE]))
    assert f.firewalld_rich_rules == {RULE} and f.firewalld_ports == {"22/tcp"}
    assert f.firewalld_services == {"dhcpv6-client", "ssh"}
    assert "firewall-cmd --list-rich-rules" in factlib.script(factlib.FactRequest())


@pytest.mark.parametrize("private, problem", [
    ("0.0.0.0", "one specific address"),
    ("::", "one specific address"),
    (None, "is required"),
])
def test_apps_never_bind_a_wildcard_or_a_name(tmp_path, private, problem):
    address = "web1.example.test" if private is None else "10.123.0.11"
    extra = "" if private is None else f"\n          private_address: '{private}'"
    text = TWO_HOSTS.replace("../.lab/ssh_config", "ssh_config")
    text = text.replace("ansible_host: 10.123.0.11", f"ansible_host: {address}{extra}")
    (tmp_path / "ssh_config").write_text("")
    (tmp_path / "inv.yml").write_text(text)
    lines = deploy_refusal(str(tmp_path / "inv.yml"), deploy.Options(check=True))
    assert len(lines) == 1
    # (the inventory's own validation may refuse a wildcard first, in its own words)
    assert "host 'web1'" in lines[0] and "'private_address'" in lines[0], lines
    if "the apps bind it" in lines[0]:
        assert problem in lines[0], lines


def test_firewalld_port_from_is_skipped_without_firewalld():
    f = factlib.parse(centos7_output(firewalld=False))
    assert FirewalldPortFrom("8080/tcp", ("10.0.0.1",)).plan(f).reason == "firewalld is not running"
