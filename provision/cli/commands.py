"""Every command of the command line, in one table: its name, the flags it takes (flags.py) and the
function it runs. `provision` (program.py) and the checkout's `invoke` tasks (tasks.py) are both
built from COMMANDS, so a new command is one function and one row here, and it follows the
contract (contract.py) on both. A dotted name (`tls.renew`) is a command of a group: Invoke's
sub-collection `tls`, typed `provision tls.renew` and `invoke tls.renew` alike.

Each function gets the checked values as attributes (`a.inventory`, `a.limit`, ...) and returns
the exit code; the library is imported when the command runs, so that start-up stays light.
"""
from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from typing import Callable

from .flags import FLAGS, Flag

# What every command that reaches hosts takes.
CONNECTS = ("inventory", "extra_vars", "verbose", "ask_become_pass", "accept_new_host_keys", "list_hosts", "json")


@dataclass(frozen=True)
class Command:
    """A command of the command line: its name, its flags and the function it runs."""
    name: str
    run: Callable                       # (values) -> exit code
    flags: tuple[str, ...]
    positional: tuple[str, ...] = ()
    help: dict = field(default_factory=dict)     # flag -> this command's own wording
    remainder: str = ""                 # what the words after `--` are (run: the shell command)
    json_to_stdout: bool = False        # `--json -` prints the JSON instead of the usual lines
    targets: Callable | None = None     # (selected hosts) -> those it acts on, for --list-hosts

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.run) or ""

    def arguments(self) -> list[Flag]:
        """Its flags, positional ones first, each with this command's help."""
        found = []
        for name in self.positional + self.flags:
            flag = FLAGS[name]
            if name in self.help:
                flag = Flag(**{**flag.__dict__, "help": self.help[name]})
            found.append(flag)
        return found

    def usage(self, program: str) -> str:
        words = [program, self.name, "[options]"] + [FLAGS[p].metavar for p in self.positional]
        if self.remainder:
            words += ["--", self.remainder]
        return " ".join(words)


def extra_vars(a) -> list[str]:
    """-e values, then --mode as the last one (it wins, as a later -e does)."""
    return list(a.extra_vars) + ([f"proxy_mode={a.mode}"] if getattr(a, "mode", None) else [])


def tracer(a):
    """-vvv: each script sent to a host, on stderr."""
    if a.verbose < 3:
        return None

    def trace(host, command, script):
        body = "\n".join("    " + line for line in script.rstrip("\n").splitlines())
        print(f"{host} | exec | {command}\n{body}", file=sys.stderr, flush=True)
    return trace


# -- the commands ---------------------------------------------------------------------------------

def deploy(a) -> int:
    """Converge backends then proxies from an inventory; ends with a request through each proxy."""
    # lazy: the deploy path (paramiko, jinja2, ...) is imported only when a deploy runs
    from ..deploy import deploy as converge, syntax_check
    from ..engine import Options
    from ..report import Reporter
    from ..shards import parse as parse_shard
    options = Options(check=a.check, diff=a.diff, forks=a.forks, accept_new_host_keys=a.accept_new_host_keys,
                      sudo_password=a.become_password)
    if a.syntax_check:
        problems = syntax_check(a.inventory, options, a.limit, extra_vars(a))
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"syntax check: {len(problems)} problem{'s' if len(problems) != 1 else ''}" if problems
              else "syntax check: ok", file=sys.stderr if problems else sys.stdout)
        return 1 if problems else 0
    reporter = Reporter(verbose=a.verbose)
    if a.verbose >= 3:
        options.trace = reporter.sent
    options.workers = a.workers
    return converge(a.inventory, options, limit=a.limit, json_path=a.json, reporter=reporter, serial=a.serial,
                    extra_vars=extra_vars(a), shard=parse_shard(a.shard) if a.shard else None)


def verify(a) -> int:
    """Check a deployed fleet with pytest-testinfra: reachability first, then every check of every host."""
    # lazy: verify (and pytest) are imported only when the checks run
    from ..verify import main
    return main(inventory=a.inventory, limit=a.limit, mode=a.mode, junit=a.junit, extra_vars=a.extra_vars,
                json_path=a.json, accept_new_host_keys=a.accept_new_host_keys, forks=a.forks)


def status(a) -> int:
    """Balancer members, apps, last deploy and pending changes of every host (1 exec per host)."""
    # lazy: the day-2 commands are imported only when one runs
    from ..ops.status import main
    return main(a.inventory, limit=a.limit, json_path=a.json, accept_new_host_keys=a.accept_new_host_keys,
                sudo_password=a.become_password, forks=a.forks, extra_vars=a.extra_vars, trace=tracer(a))


def drain(a) -> int:
    """Set Drain for the members of the backends PATTERN names, on every proxy (survives reloads and deploys)."""
    return _drain(a, True)


def undrain(a) -> int:
    """Clear Drain for the members of the backends PATTERN names, on every proxy: they take requests again."""
    return _drain(a, False)


def _drain(a, on: bool) -> int:
    # lazy: the day-2 commands are imported only when one runs
    from ..ops.drain import main
    return main(a.inventory, a.pattern, on, app=a.app, wait=getattr(a, "wait", False),
                timeout=float(a.timeout or 60), accept_new_host_keys=a.accept_new_host_keys,
                sudo_password=a.become_password, extra_vars=a.extra_vars, json_path=a.json, trace=tracer(a))


def run(a) -> int:
    """Run the shell command given after -- on many hosts; exit 2 if it failed on any."""
    # lazy: the day-2 commands are imported only when one runs
    from ..ops.adhoc import main
    return main(a.inventory, a.remainder, limit=a.limit, sudo=a.become, forks=a.forks, json_path=a.json,
                timeout=float(a.timeout or 300), accept_new_host_keys=a.accept_new_host_keys,
                sudo_password=a.become_password, extra_vars=a.extra_vars, trace=tracer(a))


def rollback(a) -> int:
    """Switch apps of your own back to their previous kept release, one host at a time, drained meanwhile."""
    # lazy: the day-2 commands are imported only when one runs
    from ..ops.rollback import main
    return main(a.inventory, limit=a.limit, app=a.app, accept_new_host_keys=a.accept_new_host_keys,
                sudo_password=a.become_password, extra_vars=a.extra_vars, json_path=a.json, trace=tracer(a))


def facts(a) -> int:
    """The facts gathered for the hosts PATTERN names, as JSON (ansible -m setup names)."""
    # lazy: the day-2 commands are imported only when one runs
    from ..ops.facts_cmd import main
    return main(a.inventory, a.pattern, accept_new_host_keys=a.accept_new_host_keys, sudo_password=a.become_password,
                forks=a.forks, extra_vars=a.extra_vars, json_path=a.json, trace=tracer(a))


def report(a) -> int:
    """Merge the --json files of sharded runs (after --) into one recap and one exit code, as one run's."""
    # lazy: the merge is imported only when it runs
    import shlex
    from ..shards import ShardError, main
    if a.action != "merge":
        raise ShardError(f"report: the action is merge (provision report merge -- A.json B.json), got {a.action!r}")
    return main(shlex.split(a.remainder), json_path=a.json)


def tls_renew(a) -> int:
    """Renew the tls: acme certificates this machine orders (the control route) that are due; nothing else."""
    # lazy: the day-2 commands are imported only when one runs
    from ..ops.renew import main
    from ..report import Reporter
    reporter = Reporter(verbose=a.verbose)
    return main(a.inventory, limit=a.limit, accept_new_host_keys=a.accept_new_host_keys,
                sudo_password=a.become_password, forks=a.forks, extra_vars=a.extra_vars, json_path=a.json,
                trace=reporter.sent if a.verbose >= 3 else None, reporter=reporter)


def acme_proxies(hosts) -> list:
    """The proxies with tls: acme: the hosts tls.renew acts on."""
    # lazy: the day-2 commands are imported only when one runs
    from ..ops.renew import chosen
    return chosen(hosts)


def inventory(a) -> int:
    """Show the inventory as ansible-inventory does: --graph (default), --host NAME or --list."""
    # lazy: the inventory reader is imported only when it runs
    from ..inventory.show import main
    print(main(a.inventory, show_graph=a.graph, host_name=a.host, show_list=a.list))
    return 0


COMMANDS = [
    Command("deploy", deploy, ("inventory", "limit", "check", "diff", "extra_vars", "forks", "verbose",
                               "ask_become_pass", "list_hosts", "json", "syntax_check", "accept_new_host_keys",
                               "mode", "serial", "workers", "shard")),
    Command("verify", verify, ("inventory", "limit", "extra_vars", "forks", "list_hosts", "json", "junit", "mode",
                               "accept_new_host_keys"),
            help={"mode": "proxy mode to expect: single or balancer (default: the inventory's proxy_mode)",
                  "forks": "hosts checked for reachability in parallel (default 20)",
                  "json": "also write each host's checks and outcome as JSON to this file (schema 1)"}),
    Command("status", status, CONNECTS + ("limit", "forks"), json_to_stdout=True,
            help={"json": "also write the status as JSON to this file (schema 1); - prints it instead"}),
    Command("drain", drain, CONNECTS + ("app", "wait", "timeout"), positional=("pattern",),
            help={"pattern": "the backends to drain: an Ansible host pattern (web2, 'web*')",
                  "timeout": "seconds to wait for the host lock and for --wait (default 60)"}),
    Command("undrain", undrain, CONNECTS + ("app", "timeout"), positional=("pattern",),
            help={"pattern": "the backends to put back: an Ansible host pattern (web2, 'web*')",
                  "timeout": "seconds to wait for the host lock (default 60)"}),
    Command("run", run, CONNECTS + ("limit", "forks", "become", "timeout"), remainder="COMMAND",
            help={"timeout": "seconds per host (default 300)",
                  "json": "also write every host's whole output and exit code as JSON to this file (schema 1)"}),
    Command("rollback", rollback, CONNECTS + ("limit", "app"),
            help={"limit": "the backends to roll back: an Ansible host pattern (default: every backend)",
                  "app": "only this app (default: every app of your own on the host)"}),
    Command("facts", facts, CONNECTS + ("forks",), positional=("pattern",),
            help={"pattern": "the hosts to read: an Ansible host pattern"}),
    Command("tls.renew", tls_renew, CONNECTS + ("limit", "forks"), targets=acme_proxies,
            help={"limit": "the proxies to renew for: an Ansible host pattern (default: every tls: acme proxy)",
                  "forks": "proxies whose facts are read in parallel (default 20)",
                  "json": "also write each proxy's outcome and steps as JSON to this file (schema 1)"}),
    Command("inventory", inventory, ("inventory", "graph", "host", "list")),
    Command("report", report, ("json",), positional=("action",), remainder="FILE.json ...",
            help={"json": "also write the merged result as JSON to this file (schema 1)"}),
]


def register(command: Command) -> None:
    """Add a command (before the program or tasks.py is built): `provision NAME` and `invoke NAME`."""
    COMMANDS.append(command)
