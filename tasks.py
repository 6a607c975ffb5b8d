"""Project tasks: `invoke --list` shows them.

Tasks stay thin: each calls one function of the project's Python API.
Add a collection with `ns.add_collection(...)` or a task with `ns.add_task(...)`.
"""
from __future__ import annotations

import functools
import os
import sys
import time

from invoke import Collection
from invoke import task as invoke_task
from invoke.exceptions import Exit

from provision.engine import take_sudo_password
from provision.errors import UserError

# At start-up, before any inventory script, ssh or pip runs: no child process inherits it.
take_sudo_password()


def task(*args, **kwargs):
    """Invoke's @task, with every error a user can fix printed as its one line (exit 1), no traceback."""
    def one_line_errors(func):
        @functools.wraps(func)
        def run(c, *a, **kw):
            try:
                return func(c, *a, **kw)
            except UserError as e:
                prefix = "lab" if func.__name__ in LAB_TASKS else "error"
                raise Exit(f"{prefix}: {e}", code=1) from None
        return invoke_task(run, **kwargs)
    if args and callable(args[0]):
        return one_line_errors(args[0])
    return one_line_errors


LAB_TASKS = {"up", "status", "ssh", "reset", "down"}


def _lab_api():
    from provision.lab import api
    return api


# --- lab ----------------------------------------------------------------------

@task(help={"extra": "web hosts beyond web1 and web2 (web3, web4, ...)",
            "provider": "nspawn (default, local containers) or vagrant (CentOS 7 VMs)",
            "mixed": "proxy on Debian 13, web1 on 12, web2 on 11 (extra hosts cycle through them); "
                     "writes inventory/lab-mixed.yml"})
def up(c, extra=0, provider="nspawn", mixed=False):
    """Bring the local lab up (idempotent) and write its inventory: inventory/lab.yml (lab-mixed.yml with --mixed), or under .lab/ with --extra."""
    start = time.monotonic()
    if provider == "vagrant":
        from provision.lab import vagrant
        vagrant.up()
    elif provider == "nspawn":
        info = _lab_api().up(extra=int(extra), mixed=mixed)
        print(f"Lab ready: {', '.join(f'{n} ({r})' for n, r in info.releases.items())} "
              f"(ssh -F {info.ssh_config} HOST; inventory {info.inventory})")
    else:
        raise Exit(f"lab: unknown provider {provider!r}; use nspawn or vagrant", code=1)
    print(f"lab.up took {time.monotonic() - start:.1f} s")


@task
def status(c):
    """Show each lab host: address, Debian release, state, whether ssh gets in."""
    _print_status(_lab_api().status())


def _print_status(rows) -> None:
    from rich.console import Console
    from rich.table import Table
    table = Table(title="Lab hosts")
    for col in ("host", "address", "release", "state", "ssh"):
        table.add_column(col)
    for host, address, release, state, ssh_ok in rows:
        table.add_row(host, address, release, state, "[green]ok[/]" if ssh_ok else "[red]no[/]")
    Console().print(table)


@task(help={"host": "a lab host: proxy, web1, web2, ..."})
def ssh(c, host):
    """Open a shell on a lab host (ssh -F .lab/ssh_config HOST)."""
    argv = _lab_api().ssh_argv(host)
    sys.stdout.flush()
    os.execvp(argv[0], argv)


@task
def reset(c):
    """Give the lab fresh hosts, as after a new install (lab stays up)."""
    start = time.monotonic()
    _lab_api().reset()
    print(f"lab.reset took {time.monotonic() - start:.1f} s")


@task
def down(c):
    """Stop the lab and remove what it made (the base image cache stays)."""
    _lab_api().down()


lab_collection = Collection("lab", up, status, ssh, reset, down)


# --- project-wide ---------------------------------------------------------------

@task(name="test", help={"pytest_args": "extra arguments for pytest, e.g. '-k inventory' or '-m \"not lab\"'"})
def test_(c, pytest_args=""):
    """Run the whole suite, unit and lab tests; installs the apt packages the tests use first."""
    from provision.testing import run_suite
    code = run_suite(pytest_args)
    if code:
        raise Exit(code=code)


@task
def demo(c):
    """The whole job on the local lab: lab up, deploy, verify, then 6 answers through the proxy."""
    up(c)
    status(c)
    deploy(c)
    verify(c)
    from provision.demo import answers
    print("\nThrough the proxy:")
    for line in answers("inventory/lab.yml", 6):
        print(line)


# --- deploy -----------------------------------------------------------------------

DEPLOY_HELP = {
    "inventory": "inventory file, folder or script; repeat to merge several in order (default inventory/lab.yml)",
    "mode": "proxy mode for this run: single or balancer (overrides proxy_mode)",
    "check": "report what would change, change nothing",
    "diff": "show file diffs",
    "limit": "hosts or groups, comma-separated",
    "forks": "hosts converged in parallel (default 20)",
    "json": "write per-host, per-step results to this file",
    "accept_new_host_keys": "accept and remember unknown host keys (changed keys are always refused)",
    "prompt_for_sudo_password": "ask once for the sudo password of a non-root ansible_user",
    "verbose": "also show steps that changed nothing",
    "serial": "roll backends out N at a time, each drained from the balancer while it changes",
}


@task(help=DEPLOY_HELP, iterable=["inventory"])
def deploy(c, inventory=None, mode=None, check=False, diff=False, limit=None, forks=20,
           json=None, accept_new_host_keys=False, prompt_for_sudo_password=False, verbose=False, serial=0):
    """Converge backends then proxies from an inventory; ends with a request through each proxy."""
    from provision.cli import deploy_main
    code = deploy_main(inventory=inventory or ["inventory/lab.yml"], mode=mode, check=check, diff=diff,
                       limit=limit, forks=forks, json=json, accept_new_host_keys=accept_new_host_keys,
                       prompt_for_sudo_password=prompt_for_sudo_password, verbose=verbose, serial=serial)
    if code:
        raise Exit(code=code)


@task(help={"extra": "web hosts added for the large lab (default 20: 23 hosts; 0: 3 hosts only)",
            "runs": "no-op runs per lab size (median, min, max)",
            "json": "write the results to this file instead of docs/bench.json (docs left as they are)",
            "peers": "also time Ansible, pyinfra and a naive Fabric script (bench/peers/) in the same run",
            "cold_runs": "with --peers: cold runs per tool at 3 hosts (median)",
            "large": "web hosts added for one more size, ours only (97: the 100-host scenario)",
            "render": "only render docs/bench.md and the README's table from docs/bench.json (no lab)",
            "only": "only these sizes, as host counts (e.g. 3 or 23,100); the JSON's other sizes are kept"})
def bench(c, extra=20, runs=5, json=None, peers=False, cold_runs=3, large=0, render=False, only=None):
    """Time deploy on the lab: cold, no-op, drift, change and the ssh floor; exits 1 on a missed target."""
    from provision.bench import main, parse_only, render as render_docs
    sizes = parse_only(only)
    code = render_docs() if render else main(extra=int(extra), runs=int(runs), json_path=json, with_peers=peers, cold_runs=int(cold_runs),
                large=int(large), only=sizes)
    if code:
        raise Exit(code=code)


@task(iterable=["inventory"], help={"inventory": DEPLOY_HELP["inventory"],
            "limit": "hosts or groups, comma-separated",
            "junit": "write a JUnit XML report (one test case per check per host) to this file",
            "mode": "proxy mode to expect: single or balancer (default: the inventory's proxy_mode)"})
def verify(c, inventory=None, limit=None, junit=None, mode=None):
    """Check a deployed fleet with pytest-testinfra (tests/infra); exits with pytest's status."""
    from provision.verify import main
    code = main(inventory=inventory or ["inventory/lab.yml"], limit=limit, mode=mode, junit=junit)
    if code:
        raise Exit(code=code)


# --- day 2 -------------------------------------------------------------------------

CONNECT_HELP = {
    "inventory": "inventory file (default inventory/lab.yml)",
    "accept_new_host_keys": "accept and remember unknown host keys (changed keys are always refused)",
    "prompt_for_sudo_password": "ask once for the sudo password of a non-root ansible_user",
}


def _exit(code):
    if code:
        raise Exit(code=code)


@task(iterable=["inventory"], help={
    "inventory": "inventory file or folder; repeat to merge several (default inventory/lab.yml)",
    "graph": "the group tree (the default)", "host": "one host's merged variables (secrets masked)",
    "list": "everything as ansible-inventory --list JSON (secrets masked)"})
def inventory(c, inventory=None, graph=False, host=None, list_=False):
    """Show the inventory as we read it, as ansible-inventory does: --graph, --host NAME or --list."""
    from provision.inventory.show import main
    print(main(inventory or ["inventory/lab.yml"], show_graph=graph, host_name=host, show_list=list_))


@task(help={"module": "pure modules (provision/quality.py PURE_MODULES), comma-separated: a module, one file of "
                      "a pure package (inventory.validate) or a prefix (ops); default: all of them",
            "named": "apply the audit's twelve one-line mutations by hand and record the unit test that fails",
            "rescore": "recount from mutmut's last recorded results with the current equivalent list (no run)",
            "workers": "mutants run in parallel (default 1: the machine is shared)",
            "minutes": "time budget of the run; mutants not reached are recorded as not checked",
            "survivors": "run again only the module's survivors and unchecked mutants"})
def mutate(c, module=None, named=False, rescore=False, workers=1, minutes=None, survivors=False):
    """Mutation testing (mutmut) of the pure modules against the unit tests; writes docs/quality.md."""
    from provision.quality import main
    code = main(module=module, named=named, rescored=rescore, workers=int(workers),
                minutes=None if minutes is None else float(minutes), survivors=survivors)
    if code:
        raise Exit(code=code)


@task(name="status", help={**CONNECT_HELP, "limit": "hosts or groups, comma-separated",
                           "json": "print the same data as JSON"})
def fleet_status(c, inventory="inventory/lab.yml", limit=None, json=False, accept_new_host_keys=False,
                 prompt_for_sudo_password=False):
    """Balancer members, apps, last deploy and pending changes of every host (1 exec per host)."""
    from provision.ops.status import main
    _exit(main(inventory, limit=limit, as_json=json, accept_new_host_keys=accept_new_host_keys,
               prompt_for_sudo_password=prompt_for_sudo_password))


DRAIN_HELP = {**CONNECT_HELP, "host": "a backend host", "app": "only this app's member",
              "wait": "wait until no request to its members is in flight",
              "timeout": "seconds to wait (default 60)"}


@task(help=DRAIN_HELP)
def drain(c, host, inventory="inventory/lab.yml", app=None, wait=False, timeout=60, accept_new_host_keys=False,
          prompt_for_sudo_password=False):
    """Set Drain for HOST's members on every proxy (survives reloads and deploys)."""
    from provision.ops.drain import main
    _exit(main(inventory, host, True, app=app, wait=wait, timeout=float(timeout),
               accept_new_host_keys=accept_new_host_keys, prompt_for_sudo_password=prompt_for_sudo_password))


@task(help={k: v for k, v in DRAIN_HELP.items() if k != "wait"})
def undrain(c, host, inventory="inventory/lab.yml", app=None, timeout=60, accept_new_host_keys=False,
            prompt_for_sudo_password=False):
    """Clear Drain for HOST's members on every proxy: it takes requests again."""
    from provision.ops.drain import main
    _exit(main(inventory, host, False, app=app, timeout=float(timeout),
               accept_new_host_keys=accept_new_host_keys, prompt_for_sudo_password=prompt_for_sudo_password))


@task(name="run", help={**CONNECT_HELP, "limit": "hosts or groups, comma-separated",
                        "sudo": "run the command as root (sudo for a non-root ansible_user)",
                        "forks": "hosts run in parallel (default 20)",
                        "json": "write every host's whole output and exit code to this file",
                        "timeout": "seconds per host (default 300)"})
def run_(c, inventory="inventory/lab.yml", limit=None, sudo=False, forks=20, json=None, timeout=300,
         accept_new_host_keys=False, prompt_for_sudo_password=False):
    """Run the shell command given after -- on many hosts; exit 2 if any host failed."""
    from provision.ops.adhoc import main
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    _exit(main(inventory, " ".join(argv), limit=limit, sudo=sudo, forks=int(forks), json_path=json,
               timeout=float(timeout), accept_new_host_keys=accept_new_host_keys,
               prompt_for_sudo_password=prompt_for_sudo_password))


@task(name="facts", help={**CONNECT_HELP, "host": "the host to read"})
def facts_(c, host, inventory="inventory/lab.yml", accept_new_host_keys=False, prompt_for_sudo_password=False):
    """The facts gathered for HOST, as JSON (ansible -m setup style)."""
    from provision.ops.facts_cmd import main
    _exit(main(inventory, host, accept_new_host_keys=accept_new_host_keys,
               prompt_for_sudo_password=prompt_for_sudo_password))


ns = Collection()
ns.add_collection(lab_collection)
ns.add_task(deploy)
ns.add_task(verify)
ns.add_task(test_)
ns.add_task(demo)
ns.add_task(bench)
for day2 in (fleet_status, drain, undrain, run_, facts_):
    ns.add_task(day2)
ns.add_task(inventory)
ns.add_task(mutate)
