"""The Vagrant lab: `vagrant ssh-config` -> inventory, and the Vagrantfile itself.

The ssh-config inputs are real captures from public repositories
(tests/fixtures/vagrant/, sources in tests/fixtures/SOURCES.md). None of them
names its machines proxy/web1/web2, so the tests map their names onto ours.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from provision.lab import vagrant

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


def test_inventory_from_real_capture_exact_structure():
    inv = vagrant.inventory_from_ssh_config(THREE, names=THREE_NAMES)
    assert inv == {
        "all": {
            "vars": {"accept_new_host_keys": True},
            "children": {
                "proxies": {"hosts": {
                    "proxy": {
                        "ansible_host": "127.0.0.1",
                        "ansible_port": 2222,
                        "ansible_user": "vagrant",
                        "ansible_ssh_private_key_file": f"{KEY_DIR}/ansible/virtualbox/private_key",
                        "private_address": "192.168.56.10",
                    },
                }},
                "backends": {"hosts": {
                    "web1": {
                        "ansible_host": "127.0.0.1",
                        "ansible_port": 2200,
                        "ansible_user": "vagrant",
                        "ansible_ssh_private_key_file": f"{KEY_DIR}/server/virtualbox/private_key",
                        "private_address": "192.168.56.11",
                        "apps": [{"name": "hello", "port": 8080, "message": "Hello world!"}],
                    },
                    "web2": {
                        "ansible_host": "127.0.0.1",
                        "ansible_port": 2201,
                        "ansible_user": "vagrant",
                        "ansible_ssh_private_key_file": f"{KEY_DIR}/client/virtualbox/private_key",
                        "private_address": "192.168.56.12",
                        "apps": [{"name": "howdy", "port": 8081, "message": "Howdy world!"}],
                    },
                }},
            },
        }
    }


def test_no_host_key_checking_is_never_copied():
    text = vagrant.render_inventory(vagrant.inventory_from_ssh_config(THREE, names=THREE_NAMES))
    assert "StrictHostKeyChecking" not in text
    assert "/dev/null" not in text
    assert "accept_new_host_keys: true" in text


def test_render_has_header_and_round_trips():
    inv = vagrant.inventory_from_ssh_config(THREE, names=THREE_NAMES)
    text = vagrant.render_inventory(inv)
    assert text.splitlines()[0].startswith("# Written by `invoke lab.up --provider vagrant`")
    assert yaml.safe_load(text) == inv


def test_rendered_inventory_loads_with_project_loader(tmp_path):
    inventory = pytest.importorskip("provision.inventory")
    path = tmp_path / "vagrant.yml"
    path.write_text(vagrant.render_inventory(vagrant.inventory_from_ssh_config(THREE, names=THREE_NAMES)))
    loaded = inventory.load(path)
    assert sorted(loaded.hosts) == ["proxy", "web1", "web2"]
    assert [h.name for h in loaded.group("backends")] == ["web1", "web2"]
    assert loaded.hosts["web2"].private_address == "192.168.56.12"


def test_repeated_identity_file_lines_are_kept_and_first_is_used():
    hosts = vagrant.parse_ssh_config(SHARED)
    keys = hosts["k3s-agent-1"]["identityfile"]
    assert keys == ["/home/hieu/.vagrant.d/insecure_private_keys/vagrant.key.ed25519",
                    "/home/hieu/.vagrant.d/insecure_private_keys/vagrant.key.rsa"]
    inv = vagrant.inventory_from_ssh_config(SHARED, names=SHARED_NAMES)
    web2 = inv["all"]["children"]["backends"]["hosts"]["web2"]
    assert web2["ansible_port"] == 2202
    assert web2["ansible_ssh_private_key_file"] == keys[0]


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
        vagrant.inventory_from_ssh_config(LIBVIRT, names={"pxe_server": "proxy", "harvester-node-0": "web1"})


def test_machine_not_in_address_table_is_an_error():
    with pytest.raises(ValueError, match=r"'ansible' .*not in PRIVATE_ADDRESSES"):
        vagrant.inventory_from_ssh_config(THREE)


def test_two_machines_mapped_to_one_name_is_an_error():
    with pytest.raises(ValueError, match="both map to 'proxy'"):
        vagrant.inventory_from_ssh_config(THREE, names={"ansible": "proxy", "server": "proxy"})


def test_text_before_first_host_is_ignored():
    noisy = "==> vagrant: A new version of Vagrant is available: 9.9.9 (installed version: 2.3.4)!\n" + THREE
    assert vagrant.parse_ssh_config(noisy) == vagrant.parse_ssh_config(THREE)


def test_keyword_equals_value_and_quoted_paths():
    hosts = vagrant.parse_ssh_config('Host a\n  Port=2200\n  IdentityFile "/x y/private_key"\n')
    assert hosts == {"a": {"port": ["2200"], "identityfile": ["/x y/private_key"]}}


def test_entry_without_port_is_an_error():
    text = THREE.replace("  Port 2200\n", "")
    with pytest.raises(ValueError, match="'web1' lacks port"):
        vagrant.inventory_from_ssh_config(text, names=THREE_NAMES)


def test_vagrantfile_matches_address_table_and_has_no_provisioners():
    text = VAGRANTFILE.read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    machines = dict(re.findall(r'"(\w+)"\s*=>\s*"(192\.168\.56\.\d+)"', code))
    assert machines == vagrant.PRIVATE_ADDRESSES
    assert 'config.vm.box = "centos/7"' in code
    assert "vm.provision" not in code
    assert "vagrant" in vagrant.TEST_APT_PACKAGES


def test_up_without_vagrant_raises_lab_error(monkeypatch, tmp_path):
    monkeypatch.setattr(vagrant.shutil, "which", lambda name: None)
    with pytest.raises(Exception, match="vagrant` is not installed") as info:
        vagrant.up(log=lambda *a: None, root=tmp_path)
    assert type(info.value).__name__ == "LabError"
    assert not (tmp_path / "inventory").exists()


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
    anchor = '  config.vm.box = "centos/7"\n'
    assert anchor in text
    (tmp_path / "Vagrantfile").write_text(text.replace(anchor, anchor + "  config.vm.bogus_setting = 1\n"))
    result = vagrant.validate(tmp_path)
    assert not result.ok
    assert result.returncode == 1
    assert "bogus_setting" in result.output
    assert not (tmp_path / ".vagrant").exists()


# What Debian's vagrant 2.3.4 prints on a machine with no VirtualBox or libvirt (seen on a fresh Debian 12).
NO_PROVIDER_OUTPUT = """No usable default provider could be found for your system.

Vagrant relies on interactions with 3rd party systems, known as
"providers", to provide Vagrant with resources to run development
environments. Examples are VirtualBox, VMware, Hyper-V.
"""


def _fake_vagrant(folder: Path, output: str, code: int) -> Path:
    script = folder / "vagrant"
    script.write_text(f"#!/bin/sh\ncat <<'OUT'\n{output}OUT\nexit {code}\n")
    script.chmod(0o755)
    return folder


def test_lab_up_vagrant_without_provider_is_one_line_exit_1(tmp_path):
    bin_dir = _fake_vagrant(tmp_path, NO_PROVIDER_OUTPUT, 1)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "-m", "invoke", "lab.up", "--provider", "vagrant"],
                          cwd=REPO, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    errors = proc.stderr.strip().splitlines()
    assert errors == ["lab: vagrant found no VM provider: install VirtualBox, or libvirt and the "
                      "vagrant-libvirt plugin, or use the default lab (invoke lab.up)"]
    assert "No usable default provider" in proc.stdout          # vagrant's own words are still shown
    assert not (REPO / "inventory" / "vagrant.yml").exists()


def test_lab_up_vagrant_other_failure_names_exit_code(tmp_path, monkeypatch):
    bin_dir = _fake_vagrant(tmp_path, "boom\n", 3)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    with pytest.raises(Exception, match=r"`vagrant up` failed \(3\)") as info:
        vagrant.up(log=lambda *a: None, root=tmp_path)
    assert type(info.value).__name__ == "LabError"


def test_project_errors_share_one_base():
    from provision.deploy import DeployError
    from provision.errors import UserError
    from provision.inventory import InventoryError
    from provision.lab.system import LabError
    from provision.tls import TLSError
    from provision.wheels import WheelError
    for error in (DeployError, InventoryError, LabError, TLSError, WheelError):
        assert issubclass(error, UserError), error
