"""What every day-2 command starts from: the inventory, and one connection per host with the same
host-key and sudo handling as deploy."""
from __future__ import annotations

import getpass

from ..engine import Connections, Options, take_sudo_password
from ..errors import UserError
from ..inventory import load


class OpsError(UserError):
    pass


def open_run(inventory_path: str, accept_new_host_keys: bool = False, prompt_for_sudo_password: bool = False,
             forks: int = 20):
    """(inventory, options, connections). The sudo password comes from the prompt or the
    environment, as for deploy, and is never printed."""
    from_env = take_sudo_password()         # before an inventory script can run
    inventory = load(inventory_path)
    password = getpass.getpass("sudo password: ") if prompt_for_sudo_password else from_env
    options = Options(forks=int(forks), accept_new_host_keys=accept_new_host_keys, sudo_password=password or None)
    return inventory, options, Connections(options)


def find_host(inventory, name: str, group: str | None = None):
    host = inventory.hosts.get(name)
    if host is None:
        raise OpsError(f"{inventory.path}: no host named {name!r}")
    if group and name not in inventory.groups.get(group, []):
        raise OpsError(f"{inventory.path}: host {name!r} is not in group {group!r}")
    return host


def ssh_counts(connections) -> dict:
    return {name: {"connections": c.connections, "execs": c.execs} for name, c in connections.all().items()}
