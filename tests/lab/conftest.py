"""Fixtures for tests against the local lab of systemd-nspawn hosts."""
import os

import pytest


@pytest.fixture(scope="session")
def lab():
    """The lab, up (started if needed): a provision.lab.api.LabInfo."""
    if os.geteuid() != 0:
        pytest.skip("lab tests need root (systemd-nspawn, mounts, a bridge)")
    from provision.lab import api
    try:
        info = api.up(log=lambda msg: print(f"lab: {msg}"))
    except api.LabError as e:
        pytest.fail(f"the lab did not come up: {e}", pytrace=False)
    yield info
