"""The lab's pure plan: addresses, ssh_config, known_hosts, inventory, host files."""
from pathlib import Path

import pytest
import yaml

from provision.lab import layout

INVENTORY_3 = """\
# Written by `invoke lab.up`: the local lab of systemd-nspawn hosts.
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
        web2:
          ansible_host: 10.123.0.12
          apps:
          - {name: howdy, port: 8081, message: Howdy world!}
"""

HELLO = {"name": "hello", "port": 8080, "message": "Hello world!"}
HOWDY = {"name": "howdy", "port": 8081, "message": "Howdy world!"}


def test_default_plan():
    assert [(h.name, h.address, h.group) for h in layout.plan()] == [
        ("proxy", "10.123.0.10", "proxies"),
        ("web1", "10.123.0.11", "backends"),
        ("web2", "10.123.0.12", "backends"),
    ]


def test_extra_hosts_follow_webk_rule():
    hosts = layout.plan(extra=20)
    assert len(hosts) == 23
    assert hosts[-1].name == "web22" and hosts[-1].address == "10.123.0.32"
    for h in hosts[1:]:
        k = int(h.name[3:])
        assert h.address == f"10.123.0.{10 + k}"


@pytest.mark.parametrize("extra", [-1, layout.MAX_EXTRA + 1])
def test_plan_refuses_bad_extra(extra):
    with pytest.raises(ValueError):
        layout.plan(extra)


def test_inventory_of_three_hosts_is_exactly_the_committed_text():
    assert layout.inventory(layout.plan()) == INVENTORY_3


def test_committed_inventory_matches_plan():
    committed = Path(__file__).resolve().parents[3] / "inventory" / "lab.yml"
    assert committed.read_text() == INVENTORY_3


def test_inventory_loads_with_alternating_apps():
    data = yaml.safe_load(layout.inventory(layout.plan(extra=3)))
    assert data["all"]["vars"] == {"ssh_config": "../.lab/ssh_config"}
    assert data["all"]["children"]["proxies"]["hosts"] == {"proxy": {"ansible_host": "10.123.0.10"}}
    backends = data["all"]["children"]["backends"]["hosts"]
    assert list(backends) == ["web1", "web2", "web3", "web4", "web5"]
    assert [b["apps"] for b in backends.values()] == [[HELLO], [HOWDY], [HELLO], [HOWDY], [HELLO]]
    assert backends["web5"]["ansible_host"] == "10.123.0.15"


def test_ssh_config_is_strict_and_absolute():
    text = layout.ssh_config(layout.plan(), Path("/x/.lab/id_ed25519"), Path("/x/.lab/known_hosts"))
    blocks = text.split("Host ")[1:]
    assert [b.split()[0] for b in blocks] == ["proxy", "web1", "web2"]
    web2 = blocks[2]
    for line in ("HostName 10.123.0.12", "User root", "IdentityFile /x/.lab/id_ed25519",
                 "UserKnownHostsFile /x/.lab/known_hosts", "StrictHostKeyChecking yes",
                 "IdentitiesOnly yes"):
        assert line in web2
    assert "StrictHostKeyChecking no" not in text


def test_ssh_config_quotes_paths_with_spaces():
    text = layout.ssh_config(layout.plan(), Path("/my lab/id"), Path("/my lab/kh"))
    assert 'IdentityFile "/my lab/id"' in text


def test_known_hosts_line_names_alias_and_address_and_drops_comment():
    proxy = layout.plan()[0]
    line = layout.known_hosts_line(proxy, "ssh-ed25519 AAAAC3Nza root@proxy")
    assert line == "proxy,10.123.0.10 ssh-ed25519 AAAAC3Nza"


def test_host_files():
    web1 = layout.plan()[1]
    files = layout.host_files(web1, "ab" * 16)
    assert files["etc/hostname"] == "web1\n"
    assert "127.0.1.1\tweb1\n" in files["etc/hosts"]
    assert files["etc/machine-id"] == "ab" * 16 + "\n"
    net = files["etc/systemd/network/10-host0.network"]
    assert "Name=host0" in net and "Address=10.123.0.11/24" in net and "Gateway=10.123.0.1" in net
    assert files["etc/apt/apt.conf.d/01proxy"] == ('Acquire::http::Proxy "http://10.123.0.1:3142";\n'
                                                  'Acquire::http::Timeout "20";\nAcquire::Retries "3";\n')


def test_apt_cacher_conf_binds_bridge_and_loopback():
    text = layout.apt_cacher_conf(Path("/c/cache"), Path("/c/log"))
    assert "BindAddress: 10.123.0.1 127.0.0.1\n" in text
    assert "Port: 3142\n" in text and "ForeGround: 1\n" in text
    assert "CacheDir: /c/cache\n" in text and "LogDir: /c/log\n" in text


SOURCES = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main contrib
"""


def test_parse_sources_and_mirror():
    sources = layout.parse_sources(SOURCES)
    assert [s.uri for s in sources] == ["http://deb.debian.org/debian", "http://deb.debian.org/debian-security"]
    assert layout.mirror(sources) == "http://deb.debian.org/debian"
    # The machine's archive serves the other releases under their own codenames.
    assert layout.mirror(sources, "trixie") == "http://deb.debian.org/debian"
    with pytest.raises(ValueError):
        layout.mirror(layout.parse_sources(SOURCES.replace("bookworm", "noble")))


def test_sources_list_for_hosts():
    assert layout.sources_list(layout.parse_sources(SOURCES)) == (
        "deb http://deb.debian.org/debian bookworm main\n"
        "deb http://deb.debian.org/debian bookworm-updates main\n"
        "deb http://deb.debian.org/debian-security bookworm-security main contrib\n"
    )


@pytest.mark.parametrize("suite", ["bullseye", "trixie"])
def test_sources_list_for_another_release_uses_the_same_mirrors(suite):
    assert layout.sources_list(layout.parse_sources(SOURCES), suite) == (
        f"deb http://deb.debian.org/debian {suite} main\n"
        f"deb http://deb.debian.org/debian {suite}-updates main\n"
        f"deb http://deb.debian.org/debian-security {suite}-security main contrib\n"
    )


def test_sources_list_names_each_pocket_once():
    both = SOURCES + "\nTypes: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\n"
    assert layout.sources_list(layout.parse_sources(both), "trixie").count(" trixie main\n") == 1


def test_default_lab_is_all_debian_12():
    assert {h.suite for h in layout.plan(extra=5)} == {"bookworm"}
    assert layout.plan()[0].release == "Debian 12 (bookworm)"


def test_mixed_lab_proxy_13_web1_12_web2_11_and_extras_cycle():
    hosts = layout.plan(extra=4, mixed=True)
    assert [(h.name, layout.RELEASES[h.suite]) for h in hosts] == [
        ("proxy", "13"), ("web1", "12"), ("web2", "11"),
        ("web3", "13"), ("web4", "12"), ("web5", "11"), ("web6", "13")]
    # Same names, addresses and groups as the default lab: only the releases differ.
    assert [(h.name, h.address, h.group) for h in hosts] == \
        [(h.name, h.address, h.group) for h in layout.plan(extra=4)]


def test_committed_mixed_inventory_matches_plan():
    committed = Path(__file__).resolve().parents[3] / "inventory" / "lab-mixed.yml"
    text = layout.inventory(layout.plan(mixed=True))
    assert committed.read_text() == text
    assert "proxy:  # Debian 13 (trixie)\n" in text and "web2:  # Debian 11 (bullseye)\n" in text
    # The same hosts and apps as inventory/lab.yml: the YAML differs only in its comments.
    assert yaml.safe_load(text) == yaml.safe_load(INVENTORY_3)


def test_mirror_apt_conf_keeps_only_what_the_mirror_needs():
    files = {
        "99artifact-registry": 'Acquire::Check-Valid-Until "false";\n',
        "docker-no-languages": 'Acquire::Languages "none";\n',
        "70debconf": "DPkg::Pre-Install-Pkgs {};\n",
    }
    assert list(layout.mirror_apt_conf(files)) == ["99artifact-registry"]


def test_a_bigger_lab_writes_its_inventory_under_dot_lab(tmp_path):
    """Only the 3-host lab uses the tracked inventory/lab.yml; --extra N writes .lab/lab.yml, whose
    ssh_config path is relative to .lab/."""
    assert layout.inventory_path(tmp_path, 3) == tmp_path / "inventory" / "lab.yml"
    assert layout.inventory_path(tmp_path, 4) == tmp_path / ".lab" / "lab.yml"
    text = layout.inventory(layout.plan(extra=1), ssh_config="ssh_config")
    assert yaml.safe_load(text)["all"]["vars"] == {"ssh_config": "ssh_config"}


def test_mixed_inventory_path_is_tracked_for_three_hosts_only():
    root = Path("/r")
    assert layout.inventory_path(root, 3, mixed=True) == root / "inventory" / "lab-mixed.yml"
    assert layout.inventory_path(root, 4, mixed=True) == root / ".lab" / "lab-mixed.yml"
    assert layout.inventory_path(root, 3) == root / "inventory" / "lab.yml"
    assert layout.is_mixed(layout.plan(mixed=True)) and not layout.is_mixed(layout.plan(extra=3))
