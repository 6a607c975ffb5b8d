"""`invoke test`: the apt packages the test suite uses, then pytest."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys

from provision.lab.system import LabError, ensure_packages
from provision.lab.vagrant import TEST_APT_PACKAGES


def run_suite(pytest_args: str = "") -> int:
    if os.geteuid() == 0 and sys.platform.startswith("linux"):
        try:
            ensure_packages(print, TEST_APT_PACKAGES, "the tests use")
        except LabError as exc:
            print(f"warning: {exc}")
    return subprocess.call([sys.executable, "-m", "pytest", *shlex.split(pytest_args)])
