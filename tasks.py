"""Project tasks: `invoke --list` shows them.

Tasks stay thin: each parses its flags and calls one function of the project's Python API, which
is imported when the task runs, so that `invoke --list` starts fast. The product's tasks are here;
the dev tasks (test, bench, mutate) come from bench/tasks.py. Every error a user can fix ends as
one line and exit 1, prefixed per collection ("lab:" or "error:").
"""
from __future__ import annotations

import os
import sys
import time

from invoke import Collection
from invoke.exceptions import Exit

from bench.tasks import DEV_TASKS
from provision.cli import deploy_main, exit_with, task_printing
from provision.engine import take_sudo_password

# At start-up, before any inventory script, ssh or pip runs: no child process inherits it.
take_sudo_password()

DEFAULT_INVENTORY = "inventory/lab.yml"

task = task_printing("error")
lab_task = task_printing("lab")


def _lab_api():
    from provision.lab import api
    return api


# --- lab ----------------------------------------------------------------------

@lab_task(help={"extra": "web hosts beyond web1 and web2 (web3, web4, ...)",
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


@lab_task
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


@lab_task(help={"host": "a lab host: proxy, web1, web2, ..."})
def ssh(c, host):
    """Open a shell on a lab host (ssh -F .lab/ssh_config HOST)."""
    argv = _lab_api().ssh_argv(host)
    sys.stdout.flush()
    os.execvp(argv[0], argv)


@lab_task
def reset(c):
    """Give the lab fresh hosts, as after a new install (lab stays up)."""
    start = time.monotonic()
    _lab_api().reset()
    print(f"lab.reset took {time.monotonic() - start:.1f} s")


@lab_task
def down(c):
    """Stop the lab and remove what it made (the base image cache stays)."""
    _lab_api().down()


lab_collection = Collection("lab", up, status, ssh, reset, down)


# --- project-wide ---------------------------------------------------------------

@task
def demo(c):
    """The whole job on the local lab: lab up, deploy, verify, then 6 answers through the proxy."""
    up(c)
    status(c)
    deploy(c)
    verify(c)
    from provision.lab.demo import answers
    print("\nThrough the proxy:")
    for line in answers(DEFAULT_INVENTORY, 6):
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
    code = deploy_main(inventory=inventory or [DEFAULT_INVENTORY], mode=mode, check=check, diff=diff,
                       limit=limit, forks=forks, json=json, accept_new_host_keys=accept_new_host_keys,
                       prompt_for_sudo_password=prompt_for_sudo_password, verbose=verbose, serial=serial)
    exit_with(code)


@task(iterable=["inventory"], help={"inventory": DEPLOY_HELP["inventory"],
            "limit": "hosts or groups, comma-separated",
            "junit": "write a JUnit XML report (one test case per check per host) to this file",
            "mode": "proxy mode to expect: single or balancer (default: the inventory's proxy_mode)"})
def verify(c, inventory=None, limit=None, junit=None, mode=None):
    """Check a deployed fleet with pytest-testinfra (tests/infra); exits with pytest's status."""
    from provision.verify import main
    code = main(inventory=inventory or [DEFAULT_INVENTORY], limit=limit, mode=mode, junit=junit)
    exit_with(code)


# --- day 2 -------------------------------------------------------------------------

CONNECT_HELP = {
    "inventory": "inventory file (default inventory/lab.yml)",
    "accept_new_host_keys": "accept and remember unknown host keys (changed keys are always refused)",
    "prompt_for_sudo_password": "ask once for the sudo password of a non-root ansible_user",
}


@task(iterable=["inventory"], help={
    "inventory": "inventory file or folder; repeat to merge several (default inventory/lab.yml)",
    "graph": "the group tree (the default)", "host": "one host's merged variables (secrets masked)",
    "list": "everything as ansible-inventory --list JSON (secrets masked)"})
def inventory(c, inventory=None, graph=False, host=None, list_=False):
    """Show the inventory as we read it, as ansible-inventory does: --graph, --host NAME or --list."""
    from provision.inventory.show import main
    print(main(inventory or [DEFAULT_INVENTORY], show_graph=graph, host_name=host, show_list=list_))


@task(name="status", help={**CONNECT_HELP, "limit": "hosts or groups, comma-separated",
                           "json": "print the same data as JSON"})
def fleet_status(c, inventory=DEFAULT_INVENTORY, limit=None, json=False, accept_new_host_keys=False,
                 prompt_for_sudo_password=False):
    """Balancer members, apps, last deploy and pending changes of every host (1 exec per host)."""
    from provision.ops.status import main
    exit_with(main(inventory, limit=limit, as_json=json, accept_new_host_keys=accept_new_host_keys,
               prompt_for_sudo_password=prompt_for_sudo_password))


DRAIN_HELP = {**CONNECT_HELP, "host": "a backend host", "app": "only this app's member",
              "wait": "wait until no request to its members is in flight",
              "timeout": "seconds to wait (default 60)"}


@task(help=DRAIN_HELP)
def drain(c, host, inventory=DEFAULT_INVENTORY, app=None, wait=False, timeout=60, accept_new_host_keys=False,
          prompt_for_sudo_password=False):
    """Set Drain for HOST's members on every proxy (survives reloads and deploys)."""
    from provision.ops.drain import main
    exit_with(main(inventory, host, True, app=app, wait=wait, timeout=float(timeout),
               accept_new_host_keys=accept_new_host_keys, prompt_for_sudo_password=prompt_for_sudo_password))


@task(help={k: v for k, v in DRAIN_HELP.items() if k != "wait"})
def undrain(c, host, inventory=DEFAULT_INVENTORY, app=None, timeout=60, accept_new_host_keys=False,
            prompt_for_sudo_password=False):
    """Clear Drain for HOST's members on every proxy: it takes requests again."""
    from provision.ops.drain import main
    exit_with(main(inventory, host, False, app=app, timeout=float(timeout),
               accept_new_host_keys=accept_new_host_keys, prompt_for_sudo_password=prompt_for_sudo_password))


@task(name="run", help={**CONNECT_HELP, "limit": "hosts or groups, comma-separated",
                        "sudo": "run the command as root (sudo for a non-root ansible_user)",
                        "forks": "hosts run in parallel (default 20)",
                        "json": "write every host's whole output and exit code to this file",
                        "timeout": "seconds per host (default 300)"})
def run_(c, inventory=DEFAULT_INVENTORY, limit=None, sudo=False, forks=20, json=None, timeout=300,
         accept_new_host_keys=False, prompt_for_sudo_password=False):
    """Run the shell command given after -- on many hosts; exit 2 if any host failed."""
    from provision.ops.adhoc import main
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    exit_with(main(inventory, " ".join(argv), limit=limit, sudo=sudo, forks=int(forks), json_path=json,
               timeout=float(timeout), accept_new_host_keys=accept_new_host_keys,
               prompt_for_sudo_password=prompt_for_sudo_password))


@task(name="facts", help={**CONNECT_HELP, "host": "the host to read"})
def facts_(c, host, inventory=DEFAULT_INVENTORY, accept_new_host_keys=False, prompt_for_sudo_password=False):
    """The facts gathered for HOST, as JSON (ansible -m setup style)."""
    from provision.ops.facts_cmd import main
    exit_with(main(inventory, host, accept_new_host_keys=accept_new_host_keys,
               prompt_for_sudo_password=prompt_for_sudo_password))


ns = Collection()
ns.add_collection(lab_collection)
for product in (deploy, verify, demo, fleet_status, drain, undrain, run_, facts_, inventory):
    ns.add_task(product)
for dev in DEV_TASKS:
    ns.add_task(dev)
