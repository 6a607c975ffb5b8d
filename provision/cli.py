"""Entry points behind the Invoke tasks: turn flags into Options and call the API, and the one
rule for errors a user can fix (one line, exit 1, never a traceback)."""
from __future__ import annotations

import functools
import getpass

from invoke import task as invoke_task
from invoke.exceptions import Exit

from .errors import UserError


def task_printing(prefix: str):
    """Invoke's @task for one collection: every UserError it raises is printed as
    ``PREFIX: message`` with exit 1, no traceback. Used as @task or @task(help=...)."""
    def decorate(func, **kwargs):
        @functools.wraps(func)
        def run(c, *a, **kw):
            try:
                return func(c, *a, **kw)
            except UserError as e:
                raise Exit(f"{prefix}: {e}", code=1) from None
        return invoke_task(run, **kwargs)

    def task(*args, **kwargs):
        if args and callable(args[0]):
            return decorate(args[0])
        return lambda func: decorate(func, **kwargs)
    return task


def exit_with(code: int) -> None:
    """A task's exit code: 0 returns, anything else ends the command with it."""
    if code:
        raise Exit(code=code)


def deploy_main(inventory, mode=None, check=False, diff=False, limit=None, forks=20, json=None,
                accept_new_host_keys=False, prompt_for_sudo_password=False, verbose=False, serial=None) -> int:
    # The deploy path is imported when a deploy runs: every task imports this module to start.
    from .deploy import deploy
    from .engine import Options
    from .inventory import PROXY_MODES
    from .report import Reporter
    if mode is not None and mode not in PROXY_MODES:
        print(f"error: --mode must be one of {', '.join(PROXY_MODES)}, got {mode!r}")
        return 2
    password = getpass.getpass("sudo password: ") if prompt_for_sudo_password else None
    options = Options(check=check, diff=diff, forks=int(forks), accept_new_host_keys=accept_new_host_keys,
                      sudo_password=password, mode=mode)
    return deploy(inventory, options, limit=limit, json_path=json, reporter=Reporter(verbose=verbose),
                  serial=int(serial) if serial else None)
