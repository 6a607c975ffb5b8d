"""Project tasks: `invoke --list` shows them.

The product's commands (deploy, verify, status, drain, undrain, run, facts, rollback, tls.renew,
inventory) are the rows of provision/cli/commands.py, the same as the installed `provision`
command's, with the same flags and the same exit codes. The lab's tasks are here; the dev tasks (test, bench, mutate) come
from bench/tasks.py. Every error a user can fix ends as one line and exit 1, prefixed per
collection ("lab:" or "error:"). Tasks import the library when they run, so `invoke --list`
starts fast.
"""
from __future__ import annotations

import os
import sys
import time

from invoke import Collection
from invoke.exceptions import Exit

# Invoke turns bytecode writing off for its run (unless --write-pyc): every command would compile
# the project's modules again (~60 ms). Python's default, unless PYTHONDONTWRITEBYTECODE says no.
sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))

from bench.tasks import DEV_TASKS      # noqa: E402 (after the line above, so that they are cached too)
from provision.cli.flags import DEFAULT_INVENTORY      # noqa: E402
from provision.cli.tasks import add_commands, command_tasks, task_printing      # noqa: E402
from provision.engine import take_sudo_password      # noqa: E402

# At start-up, before any inventory script, ssh or pip runs: no child process inherits it.
take_sudo_password()

task = task_printing("error")
lab_task = task_printing("lab")
COMMANDS = {t.command.name: t for t in command_tasks()}


def _lab_api():
    from provision.lab import api
    return api


def _vm_lab_api():
    from provision.lab.vm import api
    return api


# --- lab ----------------------------------------------------------------------

@lab_task(help={"extra": "web hosts beyond web1 and web2 (web3, web4, ...)",
            "provider": "nspawn (default, local containers) or vagrant (VMs on libvirt, from a box built here)",
            "mixed": "proxy on Debian 13, web1 on 12, web2 on 11 (extra hosts cycle through them); "
                     "writes inventory/lab-mixed.yml",
            "acme": "also run the lab's ACME server (Debian's pebble) for inventory/lab-acme.yml"})
def up(c, extra=0, provider="nspawn", mixed=False, acme=False):
    """Bring the local lab up (idempotent) and write its inventory: inventory/lab.yml (lab-mixed.yml with --mixed), or under .lab/ with --extra."""
    start = time.monotonic()
    if provider == "vagrant":
        info = _vm_lab_api().up()
        print(f"VM lab ready ({info.driver}): {', '.join(f'{n} {a}' for n, a in info.hosts.items())} "
              f"(inventory {os.path.relpath(info.inventory)}, ssh -F {os.path.relpath(info.ssh_config)} HOST)")
    elif provider == "nspawn":
        info = _lab_api().up(extra=int(extra), mixed=mixed, acme=acme)
        print(f"Lab ready: {', '.join(f'{n} ({r})' for n, r in info.releases.items())} "
              f"(ssh -F {info.ssh_config} HOST; inventory {info.inventory})")
        if info.acme:
            print(f"ACME server: {info.acme.directory} (pebble; its root for clients: {info.acme.root})")
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


@lab_task(help={"provider": "nspawn (default) or vagrant: the VMs, their network, pool volumes and pool"})
def down(c, provider="nspawn"):
    """Stop the lab and remove what it made (the base image and the box stay cached)."""
    if provider == "vagrant":
        _vm_lab_api().down()
    elif provider == "nspawn":
        _lab_api().down()
    else:
        raise Exit(f"lab: unknown provider {provider!r}; use nspawn or vagrant", code=1)


@lab_task
def box(c):
    """Build the VM lab's Debian 12 box (when its recipe changed) and add it to Vagrant."""
    _vm_lab_api().box_only()


lab_collection = Collection("lab", up, status, ssh, reset, down, box)


# --- project-wide ---------------------------------------------------------------

@task
def demo(c):
    """The whole job on the local lab: lab up, deploy, verify, then 6 answers through the proxy."""
    up(c)
    status(c)
    COMMANDS["deploy"](c)
    COMMANDS["verify"](c)
    from provision.lab.demo import answers
    print("\nThrough the proxy:")
    for line in answers(DEFAULT_INVENTORY, 6):
        print(line)


ns = Collection()
ns.add_collection(lab_collection)
add_commands(ns, COMMANDS.values())
ns.add_task(demo)
for dev in DEV_TASKS:
    ns.add_task(dev)
