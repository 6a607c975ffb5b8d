"""The lab's plan and the text files it writes: pure, no I/O.

Names, addresses, ssh_config, known_hosts, the Ansible inventory and the
small files each host's layer carries are all computed here, so they can be
unit-tested without root.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from .. import openssh

SUBNET = ipaddress.ip_network("10.123.0.0/24")
BRIDGE = "provbr0"
BRIDGE_ADDRESS = "10.123.0.1"
PREFIX = SUBNET.prefixlen
APT_PROXY_PORT = 3142
SUITE = "bookworm"
# Most hosts one /24 can hold after .10 (proxy) and .11.. (webK).
MAX_EXTRA = 200

APPS = (
    {"name": "hello", "port": 8080, "message": "Hello world!"},
    {"name": "howdy", "port": 8081, "message": "Howdy world!"},
)


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    group: str  # "proxies" or "backends"


def web_app(k: int) -> dict:
    """Odd webK serves hello, even webK serves howdy."""
    return APPS[(k - 1) % 2]


def plan(extra: int = 0) -> list[Host]:
    """The hosts of a lab: proxy, web1, web2 and `extra` more web hosts."""
    if not 0 <= extra <= MAX_EXTRA:
        raise ValueError(f"extra must be between 0 and {MAX_EXTRA}, not {extra}")
    base = int(SUBNET.network_address)
    hosts = [Host("proxy", str(ipaddress.ip_address(base + 10)), "proxies")]
    for k in range(1, 3 + extra):
        hosts.append(Host(f"web{k}", str(ipaddress.ip_address(base + 10 + k)), "backends"))
    return hosts


def ssh_config(hosts: list[Host], key: Path, known_hosts: Path) -> str:
    """One `Host` block per lab host, with strict host-key checking."""
    blocks = ["# Written by `invoke lab.up`: the local lab of systemd-nspawn hosts.\n"]
    for h in hosts:
        blocks.append(
            f"Host {h.name}\n"
            f"    HostName {h.address}\n"
            f"    User root\n"
            f"{openssh.line('IdentityFile', key)}\n"
            f"    IdentitiesOnly yes\n"
            f"{openssh.line('UserKnownHostsFile', known_hosts)}\n"
            f"    StrictHostKeyChecking yes\n"
        )
    return "\n".join(blocks)


def known_hosts_line(host: Host, public_key: str) -> str:
    """`proxy,10.123.0.10 ssh-ed25519 AAAA...`: the key without its comment."""
    kind, blob = public_key.split()[:2]
    return f"{host.name},{host.address} {kind} {blob}"


def inventory_path(root: Path, count: int) -> Path:
    """The tracked inventory/lab.yml is the 3-host lab only; a bigger lab's inventory goes under
    .lab/ (untracked), so growing the lab changes no tracked file."""
    return root / "inventory" / "lab.yml" if count <= 3 else root / ".lab" / "lab.yml"


def inventory(hosts: list[Host], ssh_config: str = "../.lab/ssh_config") -> str:
    """The Ansible YAML inventory of the lab; `ssh_config` is relative to the inventory's folder."""
    lines = [
        "# Written by `invoke lab.up`: the local lab of systemd-nspawn hosts.",
        "all:",
        "  vars:",
        f"    ssh_config: {ssh_config}",
        "  children:",
    ]
    for group in ("proxies", "backends"):
        lines += [f"    {group}:", "      hosts:"]
        for h in hosts:
            if h.group != group:
                continue
            lines += [f"        {h.name}:", f"          ansible_host: {h.address}"]
            if group == "backends":
                app = web_app(int(h.name[3:]))
                lines += [
                    "          apps:",
                    f"          - {{name: {app['name']}, port: {app['port']}, message: {app['message']}}}",
                ]
    return "\n".join(lines) + "\n"


# --- files in each host's upper layer -------------------------------------

def host_files(host: Host, machine_id: str) -> dict[str, str]:
    """Relative path -> text of the small files that make a host itself."""
    return {
        "etc/hostname": f"{host.name}\n",
        "etc/hosts": (
            "127.0.0.1\tlocalhost\n"
            f"127.0.1.1\t{host.name}\n"
            "::1\t\tlocalhost ip6-localhost ip6-loopback\n"
        ),
        "etc/machine-id": f"{machine_id}\n",
        "etc/systemd/network/10-host0.network": (
            "[Match]\n"
            "Name=host0\n\n"
            "[Network]\n"
            f"Address={host.address}/{PREFIX}\n"
            f"Gateway={BRIDGE_ADDRESS}\n"
            "LinkLocalAddressing=no\n"
            "IPv6AcceptRA=no\n"
        ),
        "etc/apt/apt.conf.d/01proxy": apt_proxy_conf(),
    }


def apt_proxy_conf() -> str:
    return f'Acquire::http::Proxy "http://{BRIDGE_ADDRESS}:{APT_PROXY_PORT}";\n'


def apt_cacher_conf(cache_dir: Path, log_dir: Path) -> str:
    """apt-cacher-ng's own config; bound to the bridge and loopback only."""
    return (
        f"CacheDir: {cache_dir}\n"
        f"LogDir: {log_dir}\n"
        "SupportDir: /usr/lib/apt-cacher-ng\n"
        f"Port: {APT_PROXY_PORT}\n"
        f"BindAddress: {BRIDGE_ADDRESS} 127.0.0.1\n"
        "ForeGround: 1\n"
        "ExThreshold: 4\n"
    )


# --- the machine's apt mirror ----------------------------------------------

@dataclass(frozen=True)
class Source:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def parse_sources(text: str) -> list[Source]:
    """Read deb822 `.sources` text (only `Types: deb` entries)."""
    sources = []
    for para in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in para.splitlines():
            if not line.strip() or line.lstrip().startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or not fields.get("uris"):
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields["uris"].split():
            sources.append(Source(uri, tuple(fields.get("suites", "").split()),
                                  tuple(fields.get("components", "main").split())))
    return sources


def mirror(sources: list[Source], suite: str = SUITE) -> str:
    """The URI debootstrap uses: the one that serves the suite itself."""
    for s in sources:
        if suite in s.suites:
            return s.uri
    raise ValueError(f"no apt source serves {suite}")


def sources_list(sources: list[Source], suite: str = SUITE) -> str:
    """sources.list for hosts: the suite, its -updates and -security, via the same mirrors."""
    wanted = {suite, f"{suite}-updates", f"{suite}-security"}
    lines = []
    for s in sources:
        for name in s.suites:
            if name in wanted:
                lines.append(f"deb {s.uri} {name} {' '.join(s.components)}")
    return "\n".join(lines) + "\n"


def mirror_apt_conf(files: dict[str, str]) -> dict[str, str]:
    """The machine's apt.conf.d files the mirror needs (a snapshot mirror has old Release dates)."""
    return {name: text for name, text in files.items()
            if "Acquire::Check-Valid-Until" in text or "Acquire::Check-Date" in text}
