"""Checks across hosts (provision.inventory._check_cross_host) on hosts made here: pool members
name real backend apps, apps only on backends, no two hosts on one address and port."""
from pathlib import Path

import pytest

from provision.inventory import InventoryError, _check_cross_host
from provision.inventory.model import Host

PATH = Path("inv.yml")
APP = [{"name": "hello", "port": 8080, "message": "m"}]


def refusal(hosts, groups) -> str:
    with pytest.raises(InventoryError) as err:
        _check_cross_host(PATH, {h.name: h for h in hosts}, groups)
    return str(err.value)


def proxy(origins):
    return Host("proxy", "10.0.0.10", vars={"pools": {"p": {"members": ["nope"]}}}, origins=origins)


@pytest.mark.parametrize("origins, where", [({"pools": "gv/proxies.yml", "sites": "s.yml"}, "gv/proxies.yml"),
                                            ({"sites": "s.yml"}, "s.yml"), ({}, "inv.yml")])
def test_a_pool_member_error_names_the_file_that_set_the_pools(origins, where):
    assert refusal([proxy(origins)], {"proxies": ["proxy"]}) == \
        f"{where}: host 'proxy': field 'pools.p.members[0]' 'nope' names no app of a host in 'backends'"


def test_apps_only_on_backends():
    web = Host("web1", "10.0.0.11", vars={"apps": APP}, origins={"apps": "hv/web1.yml"})
    assert refusal([web], {"web": ["web1"]}) == \
        "hv/web1.yml: host 'web1': field 'apps' is set but the host is not in group 'backends'"
    _check_cross_host(PATH, {"web1": web}, {"backends": ["web1"]})


def test_two_hosts_on_one_address_and_port_even_after_an_unusable_host():
    broken = Host("a", "10.0.0.1", unusable="bad")
    b = Host("b", "10.0.0.2", origins={"ansible_host": "one.yml"})
    c = Host("c", "10.0.0.2", port=22, origins={"ansible_ssh_host": "two.yml", "ansible_host": "three.yml"})
    assert refusal([broken, b, c], {}) == "three.yml: host 'c': field 'ansible_host': 10.0.0.2:22 is already host 'b'"
    d = Host("d", "10.0.0.2", port=22)
    assert refusal([b, d], {}) == "?: host 'd': field 'ansible_host': 10.0.0.2:22 is already host 'b'"
    e = Host("e", "10.0.0.2", origins={"ansible_ssh_host": "two.yml"})
    assert refusal([b, e], {}) == "two.yml: host 'e': field 'ansible_ssh_host': 10.0.0.2:22 is already host 'b'"
    _check_cross_host(PATH, {"b": b, "f": Host("f", "10.0.0.2", port=2222)}, {})
    _check_cross_host(PATH, {"a": broken, "a2": Host("a2", "10.0.0.1", unusable="bad too")}, {})
