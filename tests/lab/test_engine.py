"""Engine behaviour over real SSH on the lab: an unreachable host, a changed host key, and a run
killed after a template changed (its handler still runs next time)."""
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import ROOT, get, invoke, recap, ssh, unit_state

pytestmark = pytest.mark.lab


def lab_inventory_copy(lab, tmp_path, mutate=None, ssh_config=None):
    data = yaml.safe_load((ROOT / "inventory/lab.yml").read_text())
    data["all"]["vars"]["ssh_config"] = str(ssh_config or lab.ssh_config)
    if mutate:
        mutate(data)
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_unreachable_host_others_converge(deployed, tmp_path):
    def add_ghost(data):
        data["all"]["children"]["backends"]["hosts"]["ghost"] = {
            "ansible_host": "10.123.0.99", "apps": [{"name": "ghost", "port": 8090, "message": "Boo"}]}
    inv = lab_inventory_copy(deployed, tmp_path, add_ghost)
    proc = invoke("deploy", "-i", str(inv), "--limit", "backends", check=4)
    counts = recap(proc.stdout)
    assert counts["ghost"]["unreachable"] == 1, proc.stdout
    assert counts["web1"] == {"ok": counts["web1"]["ok"], "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0}
    assert counts["web2"]["failed"] == 0 and counts["web2"]["unreachable"] == 0
    assert "ghost | unreachable |" in proc.stdout


def test_changed_host_key_is_refused(deployed, tmp_path):
    known = deployed.known_hosts.read_text().splitlines()
    keys = {line.split()[0].split(",")[0]: line for line in known}
    # web2's entry now carries proxy's key: exactly what a changed host key looks like.
    web2_names = keys["web2"].split()[0]
    forged = [line for line in known if not line.startswith("web2,")] + \
        [" ".join([web2_names] + keys["proxy"].split()[1:])]
    (tmp_path / "known_hosts").write_text("\n".join(forged) + "\n")
    config = deployed.ssh_config.read_text().replace(str(deployed.known_hosts), str(tmp_path / "known_hosts"))
    (tmp_path / "ssh_config").write_text(config)
    inv = lab_inventory_copy(deployed, tmp_path, ssh_config=tmp_path / "ssh_config")
    before = ssh(deployed, "web2", "journalctl -t sshd -q --no-pager | grep -c Accepted || true").stdout.strip()
    proc = invoke("deploy", "-i", str(inv), "--limit", "web2", check=4)
    assert "host key for 10.123.0.12 has CHANGED" in proc.stdout
    assert recap(proc.stdout)["web2"]["unreachable"] == 1
    after = ssh(deployed, "web2", "journalctl -t sshd -q --no-pager | grep -c Accepted || true").stdout.strip()
    assert int(after) == int(before) + 1        # only the check's own login: nothing ran for the deploy


def test_killed_run_leaves_the_handler_pending_and_the_next_run_performs_it(deployed):
    """Apache's reload is made to hang, the run is killed there (after the template changed),
    then the next run must still reload."""
    hang = "/run/systemd/system/apache2.service.d"
    ssh(deployed, "proxy", f"mkdir -p {hang} && printf '[Service]\\nExecReload=\\nExecReload=/bin/sleep 600\\n' "
                           f"> {hang}/hang.conf && systemctl daemon-reload")
    pid = unit_state(deployed, "proxy", "apache2")["MainPID"]
    run = subprocess.Popen([sys.executable, "-m", "invoke", "deploy", "--mode", "single", "--limit", "proxy"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        sleeper = ""
        while time.monotonic() < deadline and not sleeper:
            sleeper = ssh(deployed, "proxy", "ps -eo pid,args | awk '$2==\"/bin/sleep\" && $3==\"600\" {print $1}'",
                          check=False).stdout.strip()
            time.sleep(0.2)
        assert sleeper, "the reload never started"
        os.killpg(run.pid, signal.SIGKILL)       # the run we started, by its process group
        run.wait(10)
        routes = ssh(deployed, "proxy", "cat /etc/apache2/provision/proxy-routes.inc").stdout
        assert "balancer://" not in routes       # the template did change
        assert ssh(deployed, "proxy", "ls /var/lib/provision/pending/").stdout.split() == ["reload-apache"]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        # End the hung reload (the sleep we made it run, by PID), so the next reload need not
        # wait for systemd's stop timeout.
        ssh(deployed, "proxy", f"rm -rf {hang} && systemctl daemon-reload && "
                               f"{{ [ -z '{sleeper}' ] || kill {sleeper or 0}; }}; true", check=False)
    proc = invoke("deploy", "--mode", "single", "--limit", "proxy", check=0)
    assert "proxy | changed | reload apache2: handler" in proc.stdout
    assert ssh(deployed, "proxy", "ls /var/lib/provision/pending/").stdout.split() == []
    deadline = time.monotonic() + 5
    while set(get("http://10.123.0.10/")[2] for _ in range(4)) != {"Hello world!"}:
        assert time.monotonic() < deadline, "single mode is not served after the pending reload"
        time.sleep(0.2)
    assert unit_state(deployed, "proxy", "apache2")["MainPID"] == pid
    invoke("deploy", "--mode", "balancer", check=0)


def jump_config(lab, tmp_path, known_hosts):
    """The lab's ssh_config with web1 reached through proxy (ProxyJump)."""
    lines = []
    for line in lab.ssh_config.read_text().splitlines():
        lines.append(line.replace(str(lab.known_hosts), str(known_hosts)))
        if line.strip() == "Host web1":
            lines.append("    ProxyJump proxy")
    path = tmp_path / "ssh_config"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_proxyjump_from_ssh_config_with_checked_keys(deployed, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text(deployed.known_hosts.read_text())
    inv = lab_inventory_copy(deployed, tmp_path, ssh_config=jump_config(deployed, tmp_path, known))
    mark = ssh(deployed, "web1", "date +%s.%N").stdout.strip()
    proc = invoke("deploy", "-i", str(inv), "--limit", "web1", check=0)
    assert recap(proc.stdout)["web1"] == {"ok": recap(proc.stdout)["web1"]["ok"], "changed": 0, "failed": 0,
                                          "unreachable": 0, "skipped": 0}
    since = ssh(deployed, "web1", f"journalctl -t sshd -q --no-pager --since @{mark} | grep Accepted").stdout
    assert "from 10.123.0.10 " in since.splitlines()[0], since      # it came in through the proxy
    # The jump host's key is checked too: a forged one refuses the whole path.
    lines = known.read_text().splitlines()
    keys = {line.split(",")[0]: line for line in lines}
    forged = [line for line in lines if not line.startswith("proxy,")] + \
        [" ".join([keys["proxy"].split()[0]] + keys["web2"].split()[1:])]
    known.write_text("\n".join(forged) + "\n")
    proc = invoke("deploy", "-i", str(inv), "--limit", "web1", check=4)
    assert recap(proc.stdout)["web1"]["unreachable"] == 1
    assert "CHANGED" in proc.stdout, proc.stdout
