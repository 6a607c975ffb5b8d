"""Bad input stops a deploy before any connection: one line naming the file and field (exit 1 on the command line)."""
import textwrap

import pytest

from tests.support.refusal import deploy_refusal

BASE = """
all:
  children:
    proxies:
      hosts:
        proxy: {ansible_host: 10.123.0.10}
    backends:
      hosts:
        web1:
          ansible_host: 10.123.0.11
          apps: [{name: hello, port: 8080, message: "Hello world!"}]
"""

BROKEN = {
    "misspelt key": (BASE.replace("proxy: {ansible_host: 10.123.0.10}",
                                  "proxy: {ansible_host: 10.123.0.10, proxy_mdoe: single}"),
                     "host 'proxy': unknown field 'proxy_mdoe' (did you mean 'proxy_mode'?)"),
    "address with shell": (BASE.replace("proxy: {ansible_host: 10.123.0.10}",
                                        "proxy: {ansible_host: '10.0.0.11;touch${IFS}/tmp/p;'}"),
                           "host 'proxy': field 'ansible_host' must be a host name or an IP address"),
    "duplicate host": (BASE.replace("proxy: {ansible_host: 10.123.0.10}",
                                    "proxy: {ansible_host: 10.123.0.10}\n        proxy: {ansible_host: 10.123.0.9}"),
                       "key 'proxy' is given twice in one mapping (lines 6 and 7)"),
    "bad port": (BASE.replace("ansible_host: 10.123.0.11", "ansible_host: 10.123.0.11\n          ansible_port: 0"),
                 "host 'web1': field 'ansible_port'"),
    "two apps one port": (BASE.replace('apps: [{name: hello, port: 8080, message: "Hello world!"}]',
                                       'apps: [{name: a, port: 8080, message: A}, {name: b, port: 8080, message: B}]'),
                          "port 8080 is already used by app 'a'"),
    "missing group": (BASE.replace("proxies:", "frontends:"), "group 'proxies' does not exist"),
    "no apps": (BASE.replace('          apps: [{name: hello, port: 8080, message: "Hello world!"}]\n', ""),
                "group 'backends': no host has field 'apps'"),
    "bad mode": (BASE.replace("  children:", "  vars: {proxy_mode: fast}\n  children:"), "field 'proxy_mode'"),
    "bad yaml": ("all:\n  children: [\n", "inventory.yml:3: "),
    "message with newline": (BASE.replace('"Hello world!"', '"Hello\\nworld"'), "field 'apps[0].message'"),
    "public_url not http": (BASE.replace("proxy: {ansible_host: 10.123.0.10}",
                                         "proxy: {ansible_host: 10.123.0.10, public_url: 'ftp://www.example.test/'}"),
                            "host 'proxy': field 'public_url' must be an http:// or https:// URL"),
    "public_url no host": (BASE.replace("proxy: {ansible_host: 10.123.0.10}",
                                        "proxy: {ansible_host: 10.123.0.10, public_url: 'https:///x'}"),
                           "host 'proxy': field 'public_url'"),
    "public_url bad port": (BASE.replace("proxy: {ansible_host: 10.123.0.10}",
                                         "proxy: {ansible_host: 10.123.0.10, public_url: 'http://a.test:99999/'}"),
                            "host 'proxy': field 'public_url'"),
    "apps on loopback, proxy elsewhere": (
        BASE.replace("ansible_host: 10.123.0.11", "ansible_host: 10.123.0.11\n          private_address: 127.0.0.1"),
        "host 'web1': field 'private_address': 127.0.0.1 is loopback, so proxy 'proxy' on another host"),
}


class NoConnect:
    opened = 0

    def __init__(self, *a, **kw):
        pass

    def close(self):
        pass

    def open(self):
        NoConnect.opened += 1
        raise AssertionError("a connection was opened")


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_inventory_stops_before_connecting(case, tmp_path, monkeypatch):
    text, expected = BROKEN[case]
    path = tmp_path / "inventory.yml"
    path.write_text(textwrap.dedent(text))
    monkeypatch.setattr("provision.engine.HostConnection", NoConnect)
    lines = deploy_refusal(str(path))
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0], lines
    assert expected in lines[0]
    assert NoConnect.opened == 0


def test_unknown_limit_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "inventory.yml"
    path.write_text(textwrap.dedent(BASE))
    monkeypatch.setattr("provision.engine.HostConnection", NoConnect)
    assert deploy_refusal(str(path), limit="web9") == [f"error: {path}: --limit 'web9': no host matches"]
