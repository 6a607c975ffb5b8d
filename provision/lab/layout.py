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
ACME_ADDRESS = "10.123.0.2"     # the lab's ACME server (`lab.up --acme`), a second address of the bridge
PREFIX = SUBNET.prefixlen
APT_PROXY_PORT = 3142
SUITE = "bookworm"  # the default lab: every host on Debian 12
# Debian releases the lab can boot: codename -> major version.
RELEASES = {"bullseye": "11", "bookworm": "12", "trixie": "13"}
# The mixed lab (`lab.up --mixed`): proxy, web1, web2 on these; extra hosts cycle through them.
MIXED_SUITES = ("trixie", "bookworm", "bullseye")
# Most hosts one /24 can hold after .10 (proxy) and .11.. (webK).
MAX_EXTRA = 200

APPS = (
    {"name": "hello", "port": 8080, "message": "Hello world!"},
    {"name": "howdy", "port": 8081, "message": "Howdy world!"},
)


@dataclass(frozen=True)
class Host:
    """A lab host: its name, address and Debian release."""
    name: str
    address: str
    group: str  # "proxies" or "backends"
    suite: str = SUITE

    @property
    def release(self) -> str:
        """"Debian 12 (bookworm)"."""
        return f"Debian {RELEASES[self.suite]} ({self.suite})"


def web_app(k: int) -> dict:
    """Odd webK serves hello, even webK serves howdy."""
    return APPS[(k - 1) % 2]


def plan(extra: int = 0, mixed: bool = False) -> list[Host]:
    """The hosts of a lab: proxy, web1, web2 and `extra` more web hosts.

    All on Debian 12, or with `mixed` on MIXED_SUITES in turn (proxy, web1, web2, web3...)."""
    if not 0 <= extra <= MAX_EXTRA:
        raise ValueError(f"extra must be between 0 and {MAX_EXTRA}, not {extra}")
    base = int(SUBNET.network_address)
    suites = MIXED_SUITES if mixed else (SUITE,)
    hosts = []
    for k in range(0, 3 + extra):
        name, group = ("proxy", "proxies") if k == 0 else (f"web{k}", "backends")
        hosts.append(Host(name, str(ipaddress.ip_address(base + 10 + k)), group, suites[k % len(suites)]))
    return hosts


NSPAWN_HEADER = "# Written by `invoke lab.up`: the local lab of systemd-nspawn hosts."


def ssh_config(hosts: list[Host], key: Path, known_hosts: Path, user: str = "root",
               header: str = NSPAWN_HEADER) -> str:
    """One `Host` block per lab host, with strict host-key checking."""
    blocks = [header + "\n"]
    for h in hosts:
        blocks.append(
            f"Host {h.name}\n"
            f"    HostName {h.address}\n"
            f"    User {user}\n"
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


def is_mixed(hosts: list[Host]) -> bool:
    return any(h.suite != SUITE for h in hosts)


def inventory_path(root: Path, count: int, mixed: bool = False) -> Path:
    """The tracked inventory/lab.yml (lab-mixed.yml) is the 3-host lab only; a bigger lab's inventory
    goes under .lab/ (untracked), so growing the lab changes no tracked file."""
    name = "lab-mixed.yml" if mixed else "lab.yml"
    return root / "inventory" / name if count <= 3 else root / ".lab" / name


def inventory(hosts: list[Host], ssh_config: str = "../.lab/ssh_config", header: str = NSPAWN_HEADER) -> str:
    """The Ansible YAML inventory of the lab; `ssh_config` is relative to the inventory's folder.
    A mixed lab's inventory names each host's release in a comment."""
    mixed = is_mixed(hosts)
    lines = [
        "# Written by `invoke lab.up --mixed`: the local lab of systemd-nspawn hosts, on three Debian releases."
        if mixed else header,
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
            lines += [f"        {h.name}:" + (f"  # {h.release}" if mixed else ""),
                      f"          ansible_host: {h.address}"]
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


def apt_proxy_conf(address: str = BRIDGE_ADDRESS) -> str:
    """The hosts' apt proxy, with bounded waits: apt-cacher-ng can stall one of many concurrent
    `apt-get update`s for good (seen with 23 hosts), whatever tool runs apt on the host."""
    return (f'Acquire::http::Proxy "http://{address}:{APT_PROXY_PORT}";\n'
            'Acquire::http::Timeout "20";\n'
            'Acquire::Retries "3";\n')


def apt_cacher_conf(cache_dir: Path, log_dir: Path, bind: str = f"{BRIDGE_ADDRESS} 127.0.0.1") -> str:
    """apt-cacher-ng's own config; bound to the bridge and loopback only (by default)."""
    return (
        f"CacheDir: {cache_dir}\n"
        f"LogDir: {log_dir}\n"
        "SupportDir: /usr/lib/apt-cacher-ng\n"
        f"Port: {APT_PROXY_PORT}\n"
        f"BindAddress: {bind}\n"
        "ForeGround: 1\n"
        "ExThreshold: 4\n"
    )


# Certificates from the lab's ACME server live 90 days, as Let's Encrypt's do (pebble's default is 5 years).
ACME_CERT_LIFETIME = 90 * 86400


def pebble_config(address: str, port: int, management_port: int, cert: str, key: str) -> dict:
    """pebble's config (its test/config/pebble-config.json, as Debian ships it in examples/): the
    directory and management interface on the lab address, HTTP-01 and TLS-ALPN-01 validated on
    the standard ports 80 and 443 (pebble's defaults, 5002 and 5001, suit its own test server),
    and 90-day certificates (pebble 2.4's certificateValidityPeriod, in seconds)."""
    return {"pebble": {"listenAddress": f"{address}:{port}", "managementListenAddress": f"{address}:{management_port}",
                       "certificate": cert, "privateKey": key, "httpPort": 80, "tlsPort": 443,
                       "ocspResponderURL": "", "externalAccountBindingRequired": False,
                       "certificateValidityPeriod": ACME_CERT_LIFETIME}}


# --- the machine's apt mirror ----------------------------------------------

@dataclass(frozen=True)
class Source:
    """An apt source of the machine, as a deb822 file names it."""
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
    """The URI debootstrap uses: the one that serves a Debian release itself.

    The machine's sources name its own release; the same archive serves the
    other RELEASES under their codenames."""
    for s in sources:
        if any(name in RELEASES for name in s.suites):
            return s.uri
    raise ValueError(f"no apt source serves a Debian release ({suite} wanted)")


def sources_list(sources: list[Source], suite: str = SUITE) -> str:
    """sources.list for hosts: the suite, its -updates and -security, via the same mirrors.

    A machine source for another release (bookworm-security) serves the same pocket of `suite`."""
    wanted = (suite, f"{suite}-updates", f"{suite}-security")
    lines: list[str] = []
    for s in sources:
        for name in s.suites:
            codename, dash, pocket = name.partition("-")
            name = suite + dash + pocket if codename in RELEASES else name
            line = f"deb {s.uri} {name} {' '.join(s.components)}"
            if name in wanted and line not in lines:
                lines.append(line)
    return "\n".join(lines) + "\n"


def mirror_apt_conf(files: dict[str, str]) -> dict[str, str]:
    """The machine's apt.conf.d files the mirror needs (a snapshot mirror has old Release dates)."""
    return {name: text for name, text in files.items()
            if "Acquire::Check-Valid-Until" in text or "Acquire::Check-Date" in text}
