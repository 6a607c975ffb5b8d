"""The rule every command keeps, whichever program runs it (`provision` or the checkout's `invoke`):

- exit 0 all fine; 1 bad input or usage, as one line on stderr (`error: ...`), before any
  connection; 2 a host failed; 4 a host was unreachable and none failed; 130 interrupted, after
  a recap of what ran (report.py holds the codes);
- a pattern part that matches nothing is one `warning: ...` line, and the run goes on (Ansible);
- --list-hosts prints the hosts it would act on and connects to none.
"""
from __future__ import annotations

import contextlib
import sys
import warnings
from types import SimpleNamespace

from ..errors import UserError
from . import flags
from .commands import Command, extra_vars

USAGE = 1
INTERRUPTED = 130


def execute(command: Command, given: dict, remainder: str = "") -> int:
    """Run ``command`` with the values the parser gave (flag name -> value); returns the exit code."""
    with _warnings_as_lines():
        try:
            for name in command.positional:
                value = given.get(name)
                if not value:
                    raise UserError(f"{command.name}: missing {flags.FLAGS[name].metavar} "
                                    f"(usage: {command.usage('provision')})")
                if value.startswith("-"):
                    raise UserError(f"{command.name}: no such option {value!r} (provision {command.name} --help "
                                    "lists them)")
            if command.remainder and not remainder.strip() and not given.get("list_hosts"):
                raise UserError(f"{command.name}: no {command.remainder} given (put it after --: "
                                f"{command.usage('provision')})")
            values = flags.checked(command.arguments(), given, command.json_to_stdout)
            values.setdefault("become_password", None)
            a = SimpleNamespace(**values, remainder=remainder)
            if getattr(a, "list_hosts", False):
                return list_hosts(command, a)
            return command.run(a)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return USAGE
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return INTERRUPTED


def list_hosts(command: Command, a) -> int:
    """Ansible's --list-hosts: the hosts the limit (or the PATTERN) selects; nothing connects."""
    # lazy: the inventory reader is imported only when a command runs
    from ..inventory import load
    inventory = load(a.inventory, extra_vars(a))
    hosts = inventory.pick(a.pattern, command.name) if "pattern" in command.positional else inventory.select(a.limit)
    if command.targets is not None:
        hosts = command.targets(hosts)
    print(f"  hosts ({len(hosts)}):")
    for host in hosts:
        print(f"    {host.name}")
    return 0


@contextlib.contextmanager
def _warnings_as_lines():
    """A warning (a pattern part that matches nothing) is one line on stderr, not Python's two."""
    shown = warnings.showwarning

    def one_line(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {message}", file=sys.stderr)
    warnings.showwarning = one_line
    try:
        yield
    finally:
        warnings.showwarning = shown
