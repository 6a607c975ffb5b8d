"""The local lab itself: real hosts, isolated, idempotent, resettable, removable.

The destructive tests (extra hosts, then down) come last in this module and
each leaves the standard 3-host lab up for later tests.
"""
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from provision.inventory import load

from provision.lab import api, aptproxy, layout, nspawn
from provision.lab.system import alive, cache_dir, mounts

pytestmark = pytest.mark.lab


def ssh(lab, host, command, check=True):
    proc = subprocess.run(["ssh", "-F", str(lab.ssh_config), "-o", "StrictHostKeyChecking=yes",
                           "-o", "BatchMode=yes", host, command],
                          capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, f"{host}: {command}: {proc.stderr}"
    return proc


def states(lab, hosts):
    with ThreadPoolExecutor(len(hosts)) as pool:
        procs = pool.map(lambda h: ssh(lab, h, "systemctl is-system-running", check=False), hosts)
        return {h: p.stdout.strip() for h, p in zip(hosts, procs)}


def test_three_hosts_running_with_strict_host_keys(lab):
    assert lab.hosts == {"proxy": "10.123.0.10", "web1": "10.123.0.11", "web2": "10.123.0.12"}
    assert "StrictHostKeyChecking yes" in lab.ssh_config.read_text()
    assert states(lab, list(lab.hosts)) == dict.fromkeys(lab.hosts, "running")
    for name in lab.hosts:
        assert ssh(lab, name, "hostname").stdout.strip() == name


def test_each_host_has_its_own_host_key(lab):
    lines = lab.known_hosts.read_text().splitlines()
    assert [line.split()[0] for line in lines] == [f"{n},{a}" for n, a in lab.hosts.items()]
    served = {n: ssh(lab, n, "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1] for n in lab.hosts}
    assert len(set(served.values())) == len(served)
    assert [line.split()[2] for line in lines] == list(served.values())


def test_package_installed_on_one_host_is_absent_on_others(lab):
    ssh(lab, "web1", "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q tree")
    assert ssh(lab, "web1", "dpkg -s tree").returncode == 0
    for other in ("web2", "proxy"):
        assert ssh(lab, other, "dpkg -s tree", check=False).returncode != 0


def test_second_up_changes_nothing_and_is_fast(lab):
    inventory = lab.inventory.read_text()
    first = api.up()        # earlier tests may have reset the hosts: compare with the lab as it is now
    start = time.monotonic()
    again = api.up()
    took = time.monotonic() - start
    print(f"second up took {took:.1f} s")
    assert took < 10
    assert set(again.pids) == {"proxy", "web1", "web2"}
    assert again.pids == first.pids and all(again.pids.values())
    assert lab.inventory.read_text() == inventory == layout.inventory(layout.plan())


def test_reset_gives_fresh_hosts(lab):
    ssh(lab, "web2", "echo hello > /root/marker")
    old_keys = lab.known_hosts.read_text()
    start = time.monotonic()
    api.reset(log=print)
    print(f"reset took {time.monotonic() - start:.1f} s")
    assert ssh(lab, "web2", "test -e /root/marker", check=False).returncode == 1
    assert ssh(lab, "web1", "dpkg -s tree", check=False).returncode != 0
    assert lab.known_hosts.read_text() != old_keys
    assert states(lab, list(lab.hosts)) == dict.fromkeys(lab.hosts, "running")


@pytest.mark.slow
def test_extra_20_hosts_then_back_to_three(lab):
    committed = lab.inventory.read_text()
    start = time.monotonic()
    big = api.up(extra=20)
    print(f"up --extra 20 took {time.monotonic() - start:.1f} s")
    try:
        assert len(big.hosts) == 23 and big.hosts["web22"] == "10.123.0.32"
        assert big.inventory == lab.inventory.parents[1] / ".lab" / "lab.yml"
        assert len(load(big.inventory).group("backends")) == 22
        assert lab.inventory.read_text() == committed      # the tracked inventory did not change
        assert states(big, list(big.hosts)) == dict.fromkeys(big.hosts, "running")
    finally:
        small = api.up()
    assert list(small.hosts) == ["proxy", "web1", "web2"]
    assert not (lab.inventory.parents[1] / ".lab" / "lab.yml").exists()
    assert nspawn.known(cache_dir()) == ["proxy", "web1", "web2"]
    assert lab.inventory.read_text() == committed == layout.inventory(layout.plan())


def test_zz_down_leaves_nothing_then_up_again(lab):
    cache = cache_dir()
    pids = [p for p in api.up().pids.values()] + [aptproxy.pid(aptproxy.of_lab(cache))]
    assert len(pids) == 4 and all(pids)
    api.down(log=print)
    try:
        hosts_dir = str(cache / "hosts")
        assert not [m for m in mounts() if m.startswith(hosts_dir)]
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        assert layout.BRIDGE not in links and " vb-" not in links
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert not any(name in netns for name in lab.hosts)
        for group in nspawn.cgroup_parents():
            assert not group.exists(), group
        for name in lab.hosts:
            assert not (nspawn.PROPAGATE / name).exists()
        assert not [p for p in pids if Path(f"/proc/{p}").exists() and alive(p, "")]
    finally:
        again = api.up()
    assert states(again, list(again.hosts)) == dict.fromkeys(again.hosts, "running")
