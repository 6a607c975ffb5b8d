"""A fault for tests: shell commands run on a host between the apply's host lock and its
precondition check, so that a test can change a planned file in between.

Used directly on a script (unit tests), or around a whole deploy (lab tests):
    python -m tests.support.hook 'SHELL COMMANDS' deploy ARGS...
runs `invoke deploy ARGS...` with every apply script carrying the commands."""
from __future__ import annotations

import sys

from provision import apply


def after_the_lock(script: str, commands: str) -> str:
    """``script`` (an apply.guarded script) with ``commands`` run right after it took the lock."""
    lock = apply.take_lock(False)
    if lock not in script:
        raise ValueError("not a guarded apply script: no host lock in it")
    return script.replace(lock, lock + f"( {commands} ) >/dev/null 2>&1\n", 1)


def patch_guarded(commands: str) -> None:
    """From now on, every apply script of this process runs ``commands`` after its lock."""
    original = apply.guarded

    def guarded(*args, **kwargs):
        return after_the_lock(original(*args, **kwargs), commands)
    apply.guarded = guarded


if __name__ == "__main__":
    from invoke.main import program
    patch_guarded(sys.argv[1])
    program.run(["invoke", *sys.argv[2:]])
