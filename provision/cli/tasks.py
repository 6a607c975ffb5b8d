"""Invoke tasks: one per command of the table (CommandTask), for `provision` and for the checkout's
`invoke`, and the @task for the other tasks of the checkout (lab, dev), which keep the same
rule for errors a user can fix: one line, exit 1, never a traceback."""
from __future__ import annotations

import functools
import sys

from invoke import Collection, Task, task as invoke_task
from invoke.exceptions import Exit
from invoke.parser import Argument, ParserContext

from ..errors import UserError
from . import contract
from .commands import COMMANDS, Command
from .flags import Flag

# Invoke's own core flags, which `invoke` (not `provision`) accepts after any task name, and what a
# user who types one by habit means with us.
INVOKE_CORE = {"dry": "--check", "echo": "-vvv", "warn": None, "pty": None, "hide": None}


def argument(flag: Flag) -> Argument:
    """The Invoke Argument for a flag (ints are parsed by flags.checked, to fail in one line)."""
    long = flag.name.replace("_", "-")
    names = (long,) + ((flag.short,) if flag.short else ())
    kind = {"bool": bool, "list": list, "count": int}.get(flag.kind, str)
    return Argument(names=names, kind=kind, default=flag.default if flag.kind in ("bool", "count") else None,
                    help=flag.help, positional=flag.kind == "positional", incrementable=flag.kind == "count",
                    attr_name=flag.name if flag.name != long else None)


class CommandTask(Task):
    """A command of the table as an Invoke task: its flags from the one vocabulary, its body the contract."""

    def __init__(self, command: Command):
        def body(c, **given):
            code = self.execute(c, given)
            if code:
                raise Exit(code=code)
        body.__doc__ = command.doc
        body.__name__ = command.name.rpartition(".")[2]
        super().__init__(body, name=body.__name__)
        self.command = command

    def get_arguments(self, ignore_unknown_help=None) -> list[Argument]:
        return [argument(f) for f in self.command.arguments()]

    def execute(self, c, given: dict) -> int:
        if any(given.get(p) in ("-h", "--help") for p in self.command.positional):
            print(help_text(self.command, "invoke"))
            return 0
        run = c.config.get("run", {})
        for name, instead in INVOKE_CORE.items():
            if run.get(name):
                hint = f"; did you mean {instead}?" if instead else ""
                print(f"error: no such option --{name} for {self.command.name}{hint}", file=sys.stderr)
                return contract.USAGE
        return contract.execute(self.command, given, remainder(c))


def remainder(c) -> str:
    """The words after `--` (run's shell command), as the program that parsed them kept them."""
    kept = c.config.get("provision_remainder")
    if kept is not None:
        return kept
    argv = sys.argv
    return " ".join(argv[argv.index("--") + 1:]) if "--" in argv else ""


def command_tasks() -> list[CommandTask]:
    return [CommandTask(command) for command in COMMANDS]


def add_commands(namespace: Collection, tasks) -> None:
    """The commands' tasks into ``namespace``; a dotted one (`tls.renew`) into the sub-collection its
    group names (`tls`), made when it is the first of its group."""
    for task in tasks:
        group = task.command.name.rpartition(".")[0]
        if not group:
            namespace.add_task(task)
            continue
        if group not in namespace.collections:
            namespace.add_collection(Collection(group))
        namespace.collections[group].add_task(task)


def help_text(command: Command, program: str) -> str:
    """A command's --help: usage, what it does, its flags with their values."""
    rows = [(f.spelled(), f.help) for f in command.arguments()] + [("-h, --help", "show this help")]
    width = max(len(left) for left, _ in rows)
    lines = [f"Usage: {command.usage(program)}", "", command.doc, "", "Options:"]
    lines += [f"  {left.ljust(width)}   {right}" for left, right in rows]
    return "\n".join(lines)


def task_printing(prefix: str):
    """Invoke's @task for one collection: every UserError it raises is printed as
    ``PREFIX: message`` with exit 1, no traceback. Used as @task or @task(help=...)."""
    def decorate(func, **kwargs):
        @functools.wraps(func)
        def run(c, *a, **kw):
            if any(kw.get(p) in ("-h", "--help") for p in run_task.positional):
                context = ParserContext(name=func.__name__, args=run_task.get_arguments())
                print(f"Usage: invoke {run_task.name} [options]\n\n{run_task.__doc__}\n\nOptions:")
                for left, right in context.help_tuples():
                    print(f"  {left:<30} {right or ''}")
                return None
            try:
                return func(c, *a, **kw)
            except UserError as e:
                raise Exit(f"{prefix}: {e}", code=1) from None
        run_task = invoke_task(run, **kwargs)
        return run_task

    def task(*args, **kwargs):
        if args and callable(args[0]):
            return decorate(args[0])
        return lambda func: decorate(func, **kwargs)
    return task


def exit_with(code: int) -> None:
    """A task's exit code: 0 returns, anything else ends the command with it."""
    if code:
        raise Exit(code=code)
