"""The VM lab's pure parts (provision/lab/vm/layout.py) and its one-line failures, without root.

Console logs and KVM probe outputs are real captures from a machine of the lab's kind
(tests/fixtures/vm/, sources in tests/fixtures/SOURCES.md).
"""
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from provision.inventory import load
from provision.lab import layout as lab_layout
from provision.lab.system import LabError
from provision.lab.vm import box, layout, libvirt

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "vm"
KEY = Path("/cache/vm/key/id_ed25519")
LAB_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL9kTe6hGq0p1rO2n4m5Qa7z8vB3cD4eF5gH6iJ7kL8m provision-lab"


def test_plan_is_the_nspawn_labs_hosts_on_the_vms_own_subnet():
    machines = layout.plan()
    assert [(m.name, m.host.address, m.mac, m.domain) for m in machines] == [
        ("proxy", "10.124.0.10", "52:54:00:7b:00:0a", "provision-proxy"),
        ("web1", "10.124.0.11", "52:54:00:7b:00:0b", "provision-web1"),
        ("web2", "10.124.0.12", "52:54:00:7b:00:0c", "provision-web2"),
    ]
    assert [(m.host.name, m.host.group, m.host.suite) for m in machines] == \
        [(h.name, h.group, h.suite) for h in lab_layout.plan()]
    assert not layout.SUBNET.overlaps(lab_layout.SUBNET)


def test_network_is_isolated_with_a_fixed_address_per_mac_and_no_dns():
    net = ET.fromstring(layout.network_xml(layout.plan()))
    assert net.find("name").text == layout.NETWORK
    assert net.find("forward") is None          # no <forward>: libvirt neither routes nor NATs
    assert net.find("dns").get("enable") == "no"
    assert net.find("bridge").get("name") == layout.BRIDGE
    ip = net.find("ip")
    assert (ip.get("address"), ip.get("prefix")) == (layout.BRIDGE_ADDRESS, "24")
    hosts = [(h.get("mac"), h.get("name"), h.get("ip")) for h in ip.find("dhcp").findall("host")]
    assert hosts == [(m.mac, m.name, m.host.address) for m in layout.plan()]


def test_pool_is_a_folder():
    pool = ET.fromstring(layout.pool_xml(Path("/cache/vm/pool")))
    assert (pool.get("type"), pool.find("name").text, pool.find("target/path").text) == \
        ("dir", layout.POOL, "/cache/vm/pool")


def test_box_logs_in_with_the_labs_key_and_never_the_insecure_one():
    files = layout.guest_files(LAB_KEY)
    assert files["home/vagrant/.ssh/authorized_keys"] == LAB_KEY + "\n"
    assert layout.INSECURE_KEY_COMMENT not in "".join(files.values())
    assert files["etc/sudoers.d/vagrant"] == "vagrant ALL=(ALL) NOPASSWD: ALL\n"
    vagrantfile = layout.box_vagrantfile(KEY)
    assert 'config.ssh.private_key_path = "/cache/vm/key/id_ed25519"' in vagrantfile
    assert "config.ssh.insert_key = false" in vagrantfile


def test_box_boots_its_own_kernel_from_the_whole_disk():
    vagrantfile = layout.box_vagrantfile(KEY)
    assert 'lv.kernel = File.join(__dir__, "vmlinuz")' in vagrantfile
    assert 'lv.initrd = File.join(__dir__, "initrd.img")' in vagrantfile
    assert f"lv.cmd_line = {json.dumps(layout.CMDLINE)}" in vagrantfile
    assert "root=/dev/vda" in layout.CMDLINE and "console=ttyS0" in layout.CMDLINE
    files = layout.guest_files(LAB_KEY)
    assert files["etc/fstab"].split()[:2] == ["/dev/vda", "/"]
    assert files["etc/initramfs-tools/modules"].split() == ["virtio_pci", "virtio_blk", "virtio_net", "ext4"]
    assert json.loads(layout.box_metadata()) == {"provider": "libvirt", "format": "qcow2",
                                                 "virtual_size": layout.DISK_GB}
    assert box.BOX_FILES == ("metadata.json", "Vagrantfile", "box.img", "vmlinuz", "initrd.img")


def test_guests_reach_packages_through_the_vm_networks_apt_proxy_and_ask_dhcp_by_mac():
    files = layout.guest_files(LAB_KEY)
    assert files["etc/apt/apt.conf.d/01proxy"].splitlines()[0] == 'Acquire::http::Proxy "http://10.124.0.1:3142";'
    network = files["etc/systemd/network/10-lab.network"]
    assert "DHCP=ipv4" in network and "ClientIdentifier=mac" in network


def test_box_has_no_python():
    assert "python3" in layout.BOX_PURGE and "python3-minimal" in layout.BOX_PURGE
    assert not any("python" in p for p in layout.BOX_PACKAGES)


def test_recipe_digest_is_stable_and_follows_every_input(monkeypatch):
    def digest(key_line=LAB_KEY, key=KEY, base="base-bookworm-v1"):
        return layout.digest(layout.recipe(key_line, key, base))
    first = digest()
    assert first == digest() and len(first) == 16
    others = {digest(key_line=LAB_KEY.replace("L9k", "M9k")), digest(key=Path("/other/id_ed25519")),
              digest(base="base-bookworm-v2")}
    monkeypatch.setattr(layout, "BUILDER_VERSION", layout.BUILDER_VERSION + 1)
    others.add(digest())
    assert first not in others and len(others) == 4


def test_host_key_is_read_from_a_real_console_log():
    text = (FIX / "console-web1.log").read_text()
    assert layout.host_key_from_console(text) == \
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAtVjpkZ0lBZWc8lqVKkKTZo+E4HqbCPui4b8xIitpHp"


def test_host_key_of_the_latest_boot_wins_and_none_without_one():
    text = "provision-host-key: ssh-ed25519 AAAAold root@localhost\r\nlogin: \r\n" \
           "provision-host-key: ssh-ed25519 AAAAnew root@web1\r\n"
    assert layout.host_key_from_console(text) == "ssh-ed25519 AAAAnew"
    assert layout.host_key_from_console("Debian GNU/Linux 12 localhost ttyS0\r\n") is None


def test_kvm_probe_verdict_on_real_outputs():
    # Emulation: the kernel reaches its root-mount panic. KVM here: four lines of firmware, then a stall.
    assert layout.kvm_probe_passed((FIX / "kvm-probe-emulated.txt").read_text())
    assert not layout.kvm_probe_passed((FIX / "kvm-probe-kvm-stalled.txt").read_text())
    assert not layout.kvm_probe_passed("[    0.753545] VFS: Disk quotas dquot_6.6.0\n")


def hosts():
    return [m.host for m in layout.plan()]


def test_inventory_is_the_nspawn_labs_with_the_vm_labs_ssh_config(tmp_path):
    text = layout.inventory(hosts())
    assert text.splitlines()[0] == layout.HEADER
    nspawn = yaml.safe_load(lab_layout.inventory(lab_layout.plan()))
    data = yaml.safe_load(text)
    assert data["all"]["vars"] == {"ssh_config": "../.lab/vagrant/ssh_config"}
    assert data["all"]["children"].keys() == nspawn["all"]["children"].keys()
    web1 = data["all"]["children"]["backends"]["hosts"]["web1"]
    assert web1 == {"ansible_host": "10.124.0.11", "apps": nspawn["all"]["children"]["backends"]["hosts"]["web1"]["apps"]}
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "vagrant.yml").write_text(text)
    (tmp_path / ".lab" / "vagrant").mkdir(parents=True)
    (tmp_path / ".lab" / "vagrant" / "ssh_config").write_text(
        layout.ssh_config(hosts(), "vagrant", KEY, tmp_path / "known_hosts"))
    loaded = load(tmp_path / "inventory" / "vagrant.yml")
    assert sorted(loaded.hosts) == ["proxy", "web1", "web2"]
    assert loaded.hosts["web2"].ssh_config == str(tmp_path / ".lab" / "vagrant" / "ssh_config")


def test_committed_inventory_is_the_one_lab_up_writes():
    committed = Path(__file__).resolve().parents[3] / "inventory" / "vagrant.yml"
    assert committed.read_text() == layout.inventory(hosts())


def test_ssh_config_is_strict_with_the_vagrant_user_and_the_labs_key():
    text = layout.ssh_config(hosts(), "vagrant", KEY, Path("/repo/.lab/vagrant/known_hosts"))
    assert text.startswith(layout.HEADER + "\n")
    assert "Host web1\n    HostName 10.124.0.11\n    User vagrant\n    IdentityFile /cache/vm/key/id_ed25519\n" in text
    assert text.count("StrictHostKeyChecking yes") == 3
    assert "StrictHostKeyChecking no" not in text and "/dev/null" not in text


def test_known_hosts_names_each_vm_and_its_address():
    keys = {m.name: f"ssh-ed25519 AAAA{m.name}" for m in layout.plan()}
    assert layout.known_hosts(hosts(), keys).splitlines() == [
        "proxy,10.124.0.10 ssh-ed25519 AAAAproxy", "web1,10.124.0.11 ssh-ed25519 AAAAweb1",
        "web2,10.124.0.12 ssh-ed25519 AAAAweb2"]


def test_vagrant_runs_with_the_labs_box_home_and_console_folder():
    env = layout.vagrant_env(Path("/cache/vm/vagrant.d"), "qemu", Path("/cache/vm/consoles"))
    assert env["VAGRANT_HOME"] == "/cache/vm/vagrant.d"
    assert (env["PROVISION_BOX"], env["PROVISION_LIBVIRT_DRIVER"], env["PROVISION_CONSOLE_DIR"]) == \
        (layout.BOX, "qemu", "/cache/vm/consoles")
    assert env["VAGRANT_DEFAULT_PROVIDER"] == "libvirt"


# --- one-line failures --------------------------------------------------------------------------

def test_box_build_failure_is_one_line_with_the_builders_last_error():
    script = ("echo 'Reading package lists...'; echo 'E: Unable to locate package linux-image-nothing' >&2; "
              "echo 'W: some warning after it' >&2; exit 100")
    with pytest.raises(LabError) as info:
        box._step("install the kernel", ["sh", "-c", script])
    assert str(info.value) == "the box build failed (install the kernel): E: Unable to locate package linux-image-nothing"
    with pytest.raises(LabError, match=r"^the box build failed \(pack the box\): tar: nothing: Cannot stat"):
        box._step("pack the box", ["sh", "-c", "echo 'tar: nothing: Cannot stat: No such file' >&2; exit 2"])


def test_no_room_for_the_vms(monkeypatch, tmp_path):
    monkeypatch.setattr(libvirt, "_mem_available_mb", lambda: 900.0)
    with pytest.raises(LabError) as info:
        libvirt.check_room(3, tmp_path)
    assert str(info.value).startswith("no room for the VMs: 0.9 GB of memory available, 3 VMs of 512 MB "
                                      "need about 2.1 GB")
    assert "\n" not in str(info.value)


def test_no_room_on_disk_for_the_vms(monkeypatch, tmp_path):
    monkeypatch.setattr(libvirt, "_mem_available_mb", lambda: 64000.0)
    monkeypatch.setattr(layout, "ROOM_DISK_GB", 10 ** 6)
    with pytest.raises(LabError, match=r"^no room for the VMs: only [\d.]+ GB free in .*, the lab needs 1000000 GB"):
        libvirt.check_room(3, tmp_path)


def test_no_libvirt_daemon_is_one_line(monkeypatch, tmp_path):
    # No daemon answers, and the libvirtd the lab starts dies at once (as without its binary's config).
    monkeypatch.setattr(libvirt, "answers", lambda: False)
    started = []

    def spawn(argv, pidfile, logfile):
        started.append(argv[0])
        pidfile.write_text("999999999\n")       # no such process
    monkeypatch.setattr(libvirt, "spawn", spawn)
    with pytest.raises(LabError) as info:
        libvirt.ensure_daemon(tmp_path, log=lambda msg: None)
    assert started == ["/usr/sbin/virtlogd", "/usr/sbin/libvirtd"]
    assert str(info.value) == f"no libvirt daemon: libvirtd stopped at once (see {tmp_path / 'libvirtd.log'})"
