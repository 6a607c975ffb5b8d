"""The deploy path's start-up: `python -X importtime -c "import MODULE"` in fresh interpreters,
with bytecode cached in a folder of our own (as an installed copy has it, whatever
PYTHONDONTWRITEBYTECODE says). Used by the bench and by tests/unit/test_startup.py."""
from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)\s*$")


@dataclass
class ImportTime:
    """The modules one import loads and its cumulative time per run (the first, compiling run left out)."""
    modules: list[str]
    times_ms: list[float]

    @property
    def min_ms(self) -> float:
        return min(self.times_ms)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)


def parse(stderr: str, module: str) -> tuple[list[str], float | None]:
    """The modules an -X importtime report lists, and ``module``'s cumulative time in ms."""
    modules, total = [], None
    for line in stderr.splitlines():
        m = LINE.match(line)
        if m:
            modules.append(m.group(4))
            if m.group(4) == module:
                total = int(m.group(2)) / 1000
    return modules, total


def import_time(module: str, runs: int = 5, pycache: Path | None = None) -> ImportTime:
    """``runs`` fresh interpreters importing ``module``, after one that fills the bytecode cache."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if pycache is not None:
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    times, modules = [], []
    for i in range(runs + 1):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60, check=True)
        modules, total = parse(proc.stderr, module)
        if i and total is not None:
            times.append(total)
    return ImportTime(modules, times)
