"""What the rest of the code sees: hosts with their connection fields and merged variables,
and the groups they are in."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import warnings

from . import patterns
from .errors import InventoryError, PatternWarning


@dataclass
class Host:
    """A host of the inventory, with its merged variables and connection fields."""
    name: str
    address: str
    user: str | None = None             # None: ssh_config's User, else the local user
    port: int | None = None             # None: ssh_config's Port, else 22
    explicit_address: bool = True       # False: taken from ssh_config's HostName at connect time
    key: str | None = None
    ssh_config: str | None = None
    groups: list[str] = field(default_factory=list)
    vars: dict = field(default_factory=dict)
    # From ansible_ssh_common_args/extra_args: -o ProxyJump= or -J ("none": not even ssh_config's),
    # -o UserKnownHostsFile= (paths, space-separated), -o StrictHostKeyChecking= (yes or accept-new).
    proxy_jump: str | None = None
    known_hosts: str | None = None
    host_key_checking: str | None = None
    become: bool | None = None
    become_user: str | None = None
    become_password: str | None = field(default=None, repr=False)
    origins: dict = field(default_factory=dict, repr=False)     # var name -> file that set it
    unusable: str | None = None         # why we cannot connect to it (raised when it is chosen)

    @property
    def private_address(self) -> str:
        """The address backends bind to and the proxy connects to."""
        return self.vars.get("private_address") or self.address

    @property
    def apps(self) -> list[dict]:
        return self.vars.get("apps") or []


@dataclass
class Inventory:
    """The hosts and groups of a loaded inventory."""
    path: Path
    hosts: dict[str, Host]
    groups: dict[str, list[str]]        # every group but `all`: its hosts, children's included
    sources: list[Path] = field(default_factory=list)
    data: object = field(default=None, repr=False)     # the InventoryData, for graph and list views

    def group(self, name: str) -> list[Host]:
        return self._usable([self.hosts[h] for h in self.groups.get(name, [])])

    def select(self, limit: str | None, flag: str = "--limit") -> list[Host]:
        """The hosts an Ansible limit (host pattern, patterns.py) selects, in inventory order;
        every host without one. A part that matches nothing is a PatternWarning, as in Ansible."""
        if not limit:
            return self._usable(list(self.hosts.values()))
        chosen = set(self._evaluate(limit, flag))
        return self._usable([h for name, h in self.hosts.items() if name in chosen])

    def pick(self, pattern: str, what: str = "host") -> list[Host]:
        """The hosts a host pattern (a command's HOST argument) selects, in the pattern's order."""
        return self._usable([self.hosts[n] for n in self._evaluate(pattern, what)])

    def _evaluate(self, pattern: str, flag: str) -> list[str]:
        parts = patterns.expand_files(patterns.split(pattern), flag)
        matcher = patterns.Matcher(list(self.hosts), {"all": list(self.hosts), **self.groups})
        names = matcher.evaluate(parts)
        if not names:
            raise InventoryError(f"{self.path}: {flag} {pattern!r}: no host matches")
        for part in matcher.unmatched(parts):
            warnings.warn(f"{flag} {part!r} matches no host or group, ignored", PatternWarning, stacklevel=3)
        return names

    @staticmethod
    def _usable(hosts: list[Host]) -> list[Host]:
        for h in hosts:
            if h.unusable:
                raise InventoryError(h.unusable)
        return hosts
