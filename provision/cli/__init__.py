"""The command line, on top of everything: one table of commands (commands.py) over one vocabulary
of flags (flags.py), run under one contract (contract.py) by `provision` (program.py) and by the
checkout's `invoke` (tasks.py builds both programs' tasks). Nothing below imports it."""
from __future__ import annotations

from .tasks import exit_with, task_printing

__all__ = ["exit_with", "task_printing"]
