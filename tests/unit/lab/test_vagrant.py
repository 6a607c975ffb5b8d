"""Vagrant: `vagrant ssh-config` -> logins, and the Vagrantfile itself.

The ssh-config inputs are real captures: three from public repositories, one
from this project's VM lab (tests/fixtures/vagrant/, sources in
tests/fixtures/SOURCES.md). The public ones do not name their machines
proxy/web1/web2, so the tests map their names onto ours. The Vagrantfile is
rendered by Ruby with a stand-in for Vagrant (vagrantfile_machines.rb).
"""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from provision.lab import vagrant
from provision.lab.vm import layout as vm_layout

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vagrant"
REPO = Path(__file__).resolve().parents[3]
VAGRANTFILE = REPO / "Vagrantfile"

# Three VirtualBox machines, per-machine keys, Vagrant 2.3-era output.
THREE = (FIXTURES / "ssh-config.txt").read_text()
THREE_NAMES = {"ansible": "proxy", "server": "web1", "client": "web2"}
# Three machines sharing Vagrant 2.4's insecure keys: two IdentityFile lines each.
SHARED = (FIXTURES / "ssh-config-shared-keys.txt").read_text()
SHARED_NAMES = {"k3s-server-1": "proxy", "k3s-agent-1": "web1", "k3s-agent-2": "web2"}
# Two libvirt machines: HostName is the VM's own address, Port 22.
LIBVIRT = (FIXTURES / "ssh-config-libvirt.txt").read_text()
# The VM lab's three machines, captured on a machine of the lab's kind.
LAB = (FIXTURES / "ssh-config-lab.txt").read_text()
RENDERER = Path(__file__).with_name("vagrantfile_machines.rb")

KEY_DIR = "/home/ange/SemestreVII/InfraIII/last/.vagrant/machines"


def test_parse_real_three_machine_capture():
    hosts = vagrant.parse_ssh_config(THREE)
    assert list(hosts) == ["ansible", "server", "client"]
    assert [h["port"] for h in hosts.values()] == [["2222"], ["2200"], ["2201"]]
    server = hosts["server"]
    assert server["hostname"] == ["127.0.0.1"]
    assert server["user"] == ["vagrant"]
    assert server["identityfile"] == [f"{KEY_DIR}/server/virtualbox/private_key"]
    # What Vagrant tells ssh about host keys; the inventory must not copy it.
    assert server["stricthostkeychecking"] == ["no"]
    assert server["userknownhostsfile"] == ["/dev/null"]


def test_logins_from_real_capture():
    logins = vagrant.logins(THREE, ["proxy", "web1", "web2"], names=THREE_NAMES)
    assert logins == {
        "proxy": vagrant.Login("127.0.0.1", 2222, "vagrant", f"{KEY_DIR}/ansible/virtualbox/private_key"),
        "web1": vagrant.Login("127.0.0.1", 2200, "vagrant", f"{KEY_DIR}/server/virtualbox/private_key"),
        "web2": vagrant.Login("127.0.0.1", 2201, "vagrant", f"{KEY_DIR}/client/virtualbox/private_key"),
    }


def test_logins_from_the_vm_labs_own_capture():
    # `vagrant ssh-config` of this project's VM lab (libvirt): each VM's own address, port 22,
    # the lab's key; Vagrant's "no host key checking" lines are there, and never copied.
    logins = vagrant.logins(LAB, [m.name for m in vm_layout.plan()])
    assert {name: login.hostname for name, login in logins.items()} == \
        {m.name: m.host.address for m in vm_layout.plan()}
    assert {(login.port, login.user, login.key) for login in logins.values()} == \
        {(22, "vagrant", "/var/cache/provision-lab/vm/key/id_ed25519")}
    assert vagrant.parse_ssh_config(LAB)["web1"]["stricthostkeychecking"] == ["no"]


def test_repeated_identity_file_lines_are_kept_and_first_is_used():
    hosts = vagrant.parse_ssh_config(SHARED)
    keys = hosts["k3s-agent-1"]["identityfile"]
    assert keys == ["/home/hieu/.vagrant.d/insecure_private_keys/vagrant.key.ed25519",
                    "/home/hieu/.vagrant.d/insecure_private_keys/vagrant.key.rsa"]
    logins = vagrant.logins(SHARED, ["proxy", "web1", "web2"], names=SHARED_NAMES)
    assert logins["web2"].port == 2202
    assert logins["web2"].key == keys[0]


def test_machine_own_key_is_preferred_over_shared_ones():
    assert vagrant._pick_key("web1", ["/h/.vagrant.d/insecure_private_key",
                                      "/p/.vagrant/machines/web1/virtualbox/private_key"]) \
        == "/p/.vagrant/machines/web1/virtualbox/private_key"


def test_libvirt_capture_address_and_user_come_from_ssh_config():
    hosts = vagrant.parse_ssh_config(LIBVIRT)
    assert hosts["pxe_server"]["hostname"] == ["192.168.121.85"]
    assert hosts["pxe_server"]["port"] == ["22"]
    assert hosts["harvester-node-0"]["user"] == ["rancher"]


def test_missing_machine_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"no entry for web2 .*found: pxe_server, harvester-node-0"):
        vagrant.logins(LIBVIRT, ["proxy", "web1", "web2"], names={"pxe_server": "proxy", "harvester-node-0": "web1"})


def test_machine_not_in_the_lab_is_an_error():
    with pytest.raises(ValueError, match=r"'ansible' .*not in the lab \(proxy, web1, web2\)"):
        vagrant.logins(THREE, ["proxy", "web1", "web2"])


def test_two_machines_mapped_to_one_name_is_an_error():
    with pytest.raises(ValueError, match="both map to 'proxy'"):
        vagrant.logins(THREE, ["proxy", "web1", "web2"], names={"ansible": "proxy", "server": "proxy"})


def test_vagrant_error_is_one_line_from_a_real_failure():
    # The end of a real `vagrant up` of the three machines (libvirt) that failed on one of them.
    output = "==> proxy: Waiting for machine to boot. This may take a few minutes...\n" + \
        (FIXTURES / "up-failed-parallel.txt").read_text()
    assert vagrant.error_line(output) == (
        "The guest machine entered an invalid state while waiting for it to boot. Valid states are "
        "'running'. The machine is in the 'inaccessible' state. Please verify everything is configured "
        "properly and try again.")
    assert vagrant.error_line("boom\n") == "boom"
    assert vagrant.error_line("") == "no output"


def test_text_before_first_host_is_ignored():
    noisy = "==> vagrant: A new version of Vagrant is available: 9.9.9 (installed version: 2.3.4)!\n" + THREE
    assert vagrant.parse_ssh_config(noisy) == vagrant.parse_ssh_config(THREE)


def test_keyword_equals_value_and_quoted_paths():
    hosts = vagrant.parse_ssh_config('Host a\n  Port=2200\n  IdentityFile "/x y/private_key"\n')
    assert hosts == {"a": {"port": ["2200"], "identityfile": ["/x y/private_key"]}}


def test_entry_without_port_is_an_error():
    text = THREE.replace("  Port 2200\n", "")
    with pytest.raises(ValueError, match="'web1' lacks port"):
        vagrant.logins(text, ["proxy", "web1", "web2"], names=THREE_NAMES)


needs_ruby = pytest.mark.skipif(
    shutil.which("ruby") is None,
    reason="`ruby` is not installed (it comes with vagrant; `invoke test` installs "
           "provision.lab.vagrant.TEST_APT_PACKAGES)")


def render_vagrantfile(**env) -> dict:
    """The Vagrantfile evaluated by Ruby with a stand-in Vagrant (vagrantfile_machines.rb):
    {machine: its box, networks, provisioners and each provider's settings, global ones merged in}."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PROVISION_")}
    proc = subprocess.run(["ruby", str(RENDERER), str(VAGRANTFILE)], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    top = json.loads(proc.stdout)
    machines = {}
    for name, m in top["machines"].items():
        providers = {p: {**top["providers"].get(p, {}), **m["providers"].get(p, {})}
                     for p in {*top["providers"], *m["providers"]}}
        machines[name] = {"box": m["box"] or top["box"], "hostname": m["hostname"],
                          "networks": top["networks"] + m["networks"],
                          "provisioners": top["provisioners"] + m["provisioners"], "providers": providers}
    return machines


@needs_ruby
def test_provision_box_reaches_every_machine():
    machines = render_vagrantfile(PROVISION_BOX="generic/centos7")
    assert list(machines) == ["proxy", "web1", "web2"]
    assert {name: m["box"] for name, m in machines.items()} == dict.fromkeys(machines, "generic/centos7")
    # Another box: a private network per machine, the provider's own NAT network for the rest.
    assert [m["networks"] for m in machines.values()] == [
        [["private_network", {"ip": f"192.168.56.{10 + k}"}]] for k in range(3)]
    assert [m["hostname"] for m in machines.values()] == list(machines)
    for m in machines.values():
        assert "management_network_name" not in m["providers"]["libvirt"]
        assert m["providers"]["virtualbox"] == {"memory": 512, "cpus": 1}


@needs_ruby
def test_without_provision_box_every_machine_boots_the_labs_box_on_the_labs_network():
    machines = render_vagrantfile(PROVISION_CONSOLE_DIR="/c")
    assert list(machines) == [m.name for m in vm_layout.plan()]
    for m in vm_layout.plan():
        rendered = machines[m.name]
        assert rendered["box"] == vm_layout.BOX
        assert rendered["hostname"] is None         # named by the kernel command line instead
        assert rendered["networks"] == []
        lv = rendered["providers"]["libvirt"]
        assert lv["management_network_mac"] == m.mac
        assert (lv["management_network_name"], lv["management_network_address"], lv["management_network_mode"]) \
            == (vm_layout.NETWORK, str(vm_layout.SUBNET), "none")
        assert lv["management_network_keep"] is True
        assert (lv["storage_pool_name"], lv["default_prefix"]) == (vm_layout.POOL, vm_layout.PREFIX)
        assert (lv["memory"], lv["cpus"]) == (vm_layout.MEMORY_MB, vm_layout.CPUS)
        assert lv["serial"] == [[{"type": "file", "source": {"path": f"/c/{m.name}.log"}}]]
        assert lv["disk_driver"] == [[{"cache": "unsafe"}]]
        assert lv["cmd_line"] == f"{vm_layout.CMDLINE} systemd.hostname={m.name}"
        assert lv["driver"] == "kvm"
    assert all(m["provisioners"] == [] for m in machines.values())


@needs_ruby
def test_libvirt_driver_comes_from_the_kvm_probe():
    lv = render_vagrantfile(PROVISION_LIBVIRT_DRIVER="qemu")["web1"]["providers"]["libvirt"]
    assert (lv["driver"], lv["cpu_mode"], lv["cpu_model"]) == ("qemu", "custom", "qemu64")
    assert "serial" not in lv       # no console folder given: libvirt's default console
    assert "cpu_mode" not in render_vagrantfile()["web1"]["providers"]["libvirt"]


needs_vagrant = pytest.mark.skipif(
    shutil.which("vagrant") is None,
    reason="`vagrant` is not installed (apt-get install vagrant; `invoke test` installs "
           "provision.lab.vagrant.TEST_APT_PACKAGES)")


@pytest.mark.lab
@needs_vagrant
def test_vagrantfile_validates():
    result = vagrant.validate(VAGRANTFILE)
    assert result.ok, result.output
    assert result.returncode == 0


@pytest.mark.lab
@needs_vagrant
def test_vagrantfile_with_unknown_setting_fails_validate(tmp_path):
    text = VAGRANTFILE.read_text()
    anchor = '  config.vm.synced_folder ".", "/vagrant", disabled: true\n'
    assert anchor in text
    (tmp_path / "Vagrantfile").write_text(text.replace(anchor, anchor + "  config.vm.bogus_setting = 1\n"))
    result = vagrant.validate(tmp_path)
    assert not result.ok
    assert result.returncode == 1
    assert "bogus_setting" in result.output
    assert not (tmp_path / ".vagrant").exists()


def test_project_errors_share_one_base():
    from provision.deploy import DeployError
    from provision.errors import UserError
    from provision.inventory import InventoryError
    from provision.lab.system import LabError
    from provision.tls import TLSError
    from provision.wheels import WheelError
    for error in (DeployError, InventoryError, LabError, TLSError, WheelError):
        assert issubclass(error, UserError), error
