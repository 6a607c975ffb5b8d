"""The VM lab's plan and the text files it writes: pure, no I/O.

Machine names, addresses and MACs, the libvirt network and pool, the box's
recipe (the files it carries, its metadata, its own Vagrantfile), what the
repo's Vagrantfile reads from the environment, and the host keys the guests
print on their consoles. The repo's Vagrantfile repeats the machine table and
the libvirt names; a unit test renders it and checks the two agree.
"""
from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import re
from pathlib import Path

from .. import layout as lab_layout

# The VMs' own isolated network: not the nspawn lab's 10.123.0.0/24, no forwarding, no NAT.
SUBNET = ipaddress.ip_network("10.124.0.0/24")
BRIDGE = "provvm0"
BRIDGE_ADDRESS = "10.124.0.1"
NETWORK = "provision-vms"       # the libvirt network
POOL = "provision-vms"          # the libvirt storage pool (a folder in the lab's cache)
PREFIX = "provision-"           # libvirt domain names: provision-proxy, provision-web1, ...
BOX = "provision/debian12"      # the box's name in `vagrant box list`
USER = "vagrant"
MEMORY_MB = 512
CPUS = 1
DISK_GB = 4
# One running VM under emulation: 512 MB guest plus QEMU's own (about 150 MB measured).
ROOM_MB_PER_VM = 700
ROOM_DISK_GB = 6                # the box build (tree, raw disk, qcow2, box) plus three overlays
INSECURE_KEY_COMMENT = "vagrant insecure public key"

# What the box adds to the lab's Debian base tree (provision/lab/image.py), and what it removes:
# the project never needs Python on a target, so the box has none.
BOX_PACKAGES = ("linux-image-cloud-amd64", "initramfs-tools")
BOX_PURGE = ("python3", "python3-minimal", "python3.11", "python3.11-minimal", "libpython3.11-minimal",
             "libpython3.11-stdlib")
# The cloud kernel has virtio_blk and virtio_net as modules: the initramfs carries just those.
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "ext4")
CMDLINE = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"
HOST_KEY_MARK = "provision-host-key:"
# Bump when the build steps change in a way the recipe's text does not show.
BUILDER_VERSION = 4


@dataclasses.dataclass(frozen=True)
class Machine:
    """A lab VM: its host and MAC address."""
    host: lab_layout.Host       # name, address, group, as the nspawn lab's hosts
    mac: str

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def domain(self) -> str:
        return PREFIX + self.host.name


def plan() -> list[Machine]:
    """proxy, web1, web2: the nspawn lab's hosts and apps, on the VMs' subnet, each with a fixed MAC
    that the network's DHCP maps to its address."""
    base = int(SUBNET.network_address)
    machines = []
    for k, host in enumerate(lab_layout.plan(0)):
        last = 10 + k
        address = str(ipaddress.ip_address(base + last))
        machines.append(Machine(dataclasses.replace(host, address=address), f"52:54:00:7b:00:{last:02x}"))
    return machines


# --- libvirt ------------------------------------------------------------------------------------------

def network_xml(machines: list[Machine]) -> str:
    """An isolated network (no <forward>: libvirt neither routes nor NATs it) with DHCP that gives
    each machine its fixed address, and no DNS (which would forward the guests' queries out)."""
    prefix = SUBNET.prefixlen
    hosts = "".join(f'      <host mac="{m.mac}" name="{m.name}" ip="{m.host.address}"/>\n' for m in machines)
    first, last = SUBNET.network_address + 100, SUBNET.network_address + 200
    return (
        "<network>\n"
        f"  <name>{NETWORK}</name>\n"
        f'  <bridge name="{BRIDGE}" stp="off" delay="0"/>\n'
        '  <dns enable="no"/>\n'
        f'  <ip address="{BRIDGE_ADDRESS}" prefix="{prefix}">\n'
        "    <dhcp>\n"
        f'      <range start="{first}" end="{last}"/>\n'
        f"{hosts}"
        "    </dhcp>\n"
        "  </ip>\n"
        "</network>\n"
    )


def pool_xml(path: Path) -> str:
    return (f"<pool type='dir'>\n  <name>{POOL}</name>\n"
            f"  <target>\n    <path>{path}</path>\n  </target>\n</pool>\n")


def vagrant_env(vagrant_home: Path, driver: str, console_dir: Path) -> dict[str, str]:
    """What `vagrant` runs with: our box's home, the provider, and what the repo's Vagrantfile reads."""
    return {
        "VAGRANT_HOME": str(vagrant_home),
        "VAGRANT_DEFAULT_PROVIDER": "libvirt",
        "VAGRANT_CHECKPOINT_DISABLE": "1",
        "VAGRANT_NO_COLOR": "1",
        "PROVISION_BOX": BOX,
        "PROVISION_LIBVIRT_DRIVER": driver,
        "PROVISION_CONSOLE_DIR": str(console_dir),
    }


# --- the box ----------------------------------------------------------------------------------------

def guest_files(lab_public_key: str) -> dict[str, str]:
    """Relative path -> text of the files the box adds to the base tree."""
    modules = "".join(f"{m}\n" for m in INITRAMFS_MODULES)
    return {
        "etc/fstab": "/dev/vda / ext4 rw,errors=remount-ro 0 1\n",
        "etc/hosts": "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n",
        # The network's DHCP maps each MAC to its address: ask by MAC, keep our own hostname.
        "etc/systemd/network/10-lab.network": (
            "[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n\n"
            "[DHCPv4]\nClientIdentifier=mac\nUseHostname=no\n"),
        "etc/apt/apt.conf.d/01proxy": lab_layout.apt_proxy_conf(BRIDGE_ADDRESS),
        "etc/sudoers.d/vagrant": f"{USER} ALL=(ALL) NOPASSWD: ALL\n",
        f"home/{USER}/.ssh/authorized_keys": lab_public_key.strip() + "\n",
        "etc/initramfs-tools/conf.d/lab": "MODULES=list\n",
        "etc/initramfs-tools/modules": modules,
        "etc/systemd/system/provision-host-key.service": HOST_KEY_UNIT,
        # Packages install slowly under emulation: dpkg skips its fsyncs (the VMs are thrown away, like
        # a build container) and the files nobody reads on a lab host, as minimal cloud images do.
        "etc/dpkg/dpkg.cfg.d/lab": (
            "force-unsafe-io\n"
            "path-exclude=/usr/share/doc/*\npath-include=/usr/share/doc/*/copyright\n"
            "path-exclude=/usr/share/man/*\npath-exclude=/usr/share/info/*\n"
            "path-exclude=/usr/share/locale/*\npath-include=/usr/share/locale/locale.alias\n"),
    }


# Each VM makes its own host key on first boot (the box carries none) and prints the public half
# on its serial console at every boot. The lab reads it from the console log that libvirt writes on
# this machine, so known_hosts is filled from a channel no network peer can forge. The unit also
# names the host in /etc/hosts (127.0.1.1, as Debian's installer does; without it Apache warns
# AH00557): the name itself comes from the kernel command line (systemd.hostname=, per machine
# in the Vagrantfile), so Vagrant need not set it over ssh and restart the network.
HOST_KEY_UNIT = f"""[Unit]
Description=Make this host's ssh key once, show it on the console, name the host in /etc/hosts
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'test -s /etc/ssh/ssh_host_ed25519_key || ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key; echo "{HOST_KEY_MARK} $(cat /etc/ssh/ssh_host_ed25519_key.pub)" > /dev/console'
ExecStart=/bin/sh -c 'grep -q "^127.0.1.1[[:space:]]$(hostname)$" /etc/hosts || printf "127.0.1.1\\t%%s\\n" "$(hostname)" >> /etc/hosts'

[Install]
WantedBy=multi-user.target
"""


def box_vagrantfile(key: Path) -> str:
    """The box's own Vagrantfile: direct kernel boot from the kernel and initrd beside it, and the
    lab's key instead of Vagrant's well-known insecure one (which the box never carries)."""
    return (
        "# The provision lab's Debian 12 box (built by provision/lab/vm/box.py).\n"
        'Vagrant.configure("2") do |config|\n'
        f"  config.ssh.private_key_path = {json.dumps(str(key))}\n"
        "  config.ssh.insert_key = false\n"
        '  config.vm.synced_folder ".", "/vagrant", disabled: true\n'
        '  config.vm.provider "libvirt" do |lv|\n'
        '    lv.kernel = File.join(__dir__, "vmlinuz")\n'
        '    lv.initrd = File.join(__dir__, "initrd.img")\n'
        f"    lv.cmd_line = {json.dumps(CMDLINE)}\n"
        '    lv.disk_bus = "virtio"\n'
        "  end\n"
        "end\n"
    )


def box_metadata() -> str:
    return json.dumps({"provider": "libvirt", "format": "qcow2", "virtual_size": DISK_GB}) + "\n"


def recipe(lab_public_key: str, key: Path, base: str) -> dict:
    """Everything the box is made from; the box is rebuilt when, and only when, this changes.
    `base` names the base tree it starts from (base-bookworm-v1: that tree's own recipe)."""
    return {
        "builder": BUILDER_VERSION,
        "base": base,
        "packages": list(BOX_PACKAGES),
        "purge": list(BOX_PURGE),
        "cmdline": CMDLINE,
        "files": guest_files(lab_public_key),
        "vagrantfile": box_vagrantfile(key),
        "metadata": box_metadata(),
    }


def digest(recipe_: dict) -> str:
    return hashlib.sha256(json.dumps(recipe_, sort_keys=True).encode()).hexdigest()[:16]


# --- what the guests tell us ------------------------------------------------------------------------

_KEY_LINE = re.compile(re.escape(HOST_KEY_MARK) + r"\s+(ssh-ed25519\s+[A-Za-z0-9+/=]+)")


def host_key_from_console(text: str) -> str | None:
    """The last host key a guest printed on its console ("ssh-ed25519 AAAA..."), or None."""
    found = _KEY_LINE.findall(text.replace("\r", ""))
    return " ".join(found[-1].split()) if found else None


KVM_PROBE_DONE = ("Kernel panic", "VFS: Unable to mount root")


def kvm_probe_passed(console: str) -> bool:
    """A kernel booted under KVM with no root disk panics at root mount: reaching that line in
    the probe's time means KVM runs guests (here, KVM guests stall before their first line)."""
    return any(mark in console for mark in KVM_PROBE_DONE)


HEADER = "# Written by `invoke lab.up --provider vagrant`: the lab of Vagrant VMs (libvirt)."


def inventory(hosts: list[lab_layout.Host]) -> str:
    """The same inventory as the nspawn lab's, pointing at the VM lab's ssh_config."""
    return lab_layout.inventory(hosts, ssh_config="../.lab/vagrant/ssh_config", header=HEADER)


def ssh_config(hosts: list[lab_layout.Host], user: str, key: Path, known_hosts: Path) -> str:
    return lab_layout.ssh_config(hosts, key, known_hosts, user=user, header=HEADER)


def known_hosts(hosts: list[lab_layout.Host], keys: dict[str, str]) -> str:
    return "".join(lab_layout.known_hosts_line(h, keys[h.name]) + "\n" for h in hosts)
