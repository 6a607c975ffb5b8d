"""Fixtures for tests against the local lab of systemd-nspawn hosts.

One pytest run at a time uses the lab: the run holds an exclusive lock, so that two
runs (or a person's experiment run under the same lock) never reset each other's hosts."""
import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK = Path("/run/lock/provision-lab-tests.lock")


@pytest.fixture(scope="session")
def lab():
    """The lab, up (started if needed): a provision.lab.api.LabInfo."""
    if os.geteuid() != 0:
        pytest.skip("lab tests need root (systemd-nspawn, mounts, a bridge)")
    from provision.lab import api
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            info = api.up(log=lambda msg: print(f"lab: {msg}"))
        except api.LabError as e:
            pytest.fail(f"the lab did not come up: {e}", pytrace=False)
        yield info


def invoke(*args, check=None, timeout=600, env=None):
    """Run an Invoke task of this project as a user would, from the repo root."""
    proc = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    if check is not None:
        assert proc.returncode == check, f"invoke {' '.join(args)} exited {proc.returncode}:\n" \
                                         f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def ssh(lab, host, command, check=True, timeout=120):
    proc = subprocess.run(["ssh", "-F", str(lab.ssh_config), "-o", "BatchMode=yes", host, command],
                          capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"{host}: {command}: {proc.stdout}{proc.stderr}"
    return proc


def add_sudo_user(lab, user, password):
    """A login user on every lab host, with the lab's key, who may sudo anything with its password."""
    setup = (f"id {user} >/dev/null 2>&1 || useradd -m -s /bin/bash {user}; "
             f"echo '{user}:{password}' | chpasswd; "
             f"echo '{user} ALL=(ALL) ALL' > /etc/sudoers.d/{user}; chmod 440 /etc/sudoers.d/{user}; "
             f"install -d -m 700 -o {user} -g {user} /home/{user}/.ssh; "
             f"cp /root/.ssh/authorized_keys /home/{user}/.ssh/; chown {user}: /home/{user}/.ssh/authorized_keys")
    for host in lab.hosts:
        ssh(lab, host, setup)


@pytest.fixture
def deployed(lab):
    """The lab with the standard job deployed (balancer mode, lab inventory)."""
    invoke("deploy", "-i", "inventory/lab.yml", "--mode", "balancer", check=0)
    return lab


RECAP_RE = r"^(\S+) ok=(\d+) changed=(\d+) failed=(\d+) unreachable=(\d+) skipped=(\d+)$"


def recap(output: str) -> dict[str, dict[str, int]]:
    """The recap lines of a run: host -> counts."""
    import re
    return {m.group(1): dict(zip(("ok", "changed", "failed", "unreachable", "skipped"), map(int, m.groups()[1:])))
            for m in re.finditer(RECAP_RE, output, re.M)}


def unit_state(lab, host, unit):
    out = ssh(lab, host, f"systemctl show -p MainPID -p ActiveEnterTimestamp {unit}").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def get(url, host_header=None, timeout=5):
    """One HTTP request from the control machine (lab addresses only); no redirects followed."""
    import http.client
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    conn.request("GET", parts.path or "/", headers={"Host": host_header} if host_header else {})
    resp = conn.getresponse()
    body = resp.read().decode()
    conn.close()
    return resp.status, dict(resp.getheaders()), body
