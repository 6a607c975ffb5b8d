"""Fixtures for tests against the local lab of systemd-nspawn hosts.

One pytest session at a time uses the lab: the session holds an exclusive lock, so that two
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


@pytest.fixture
def deployed(lab):
    """The lab with the standard job deployed (balancer mode, lab inventory)."""
    invoke("deploy", "-i", "inventory/lab.yml", "--mode", "balancer", check=0)
    return lab
