"""The one vocabulary of flags: each flag means the same, with the same letter, on every command
that takes it, following Ansible's (`-i -l -C -D -e -f -v -K -b`, `--list-hosts`). A command
names the flags it takes (commands.py); values are checked here, before anything connects."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

DEFAULT_INVENTORY = "inventory/lab.yml"


@dataclass(frozen=True)
class Flag:
    """A flag of the one vocabulary: its names, kind and help."""
    name: str                   # the Python name; the long flag is it with dashes
    short: str | None
    kind: str                   # bool, text, int, list (repeatable), count (-vvv), positional
    help: str
    metavar: str = ""
    default: object = None
    minimum: int | None = None  # for int

    @property
    def long(self) -> str:
        return "--" + self.name.replace("_", "-")

    def spelled(self) -> str:
        """How --help shows it: `-f INT, --forks=INT`."""
        if self.kind == "positional":
            return self.metavar
        value = self.metavar or ("INT" if self.kind == "int" else "TEXT")
        takes = self.kind not in ("bool", "count")
        long = self.long + (f"={value}" if takes else "")
        if not self.short:
            return long
        short = f"-{self.short}" + (f" {value}" if takes else "")
        return f"{short}, {long}"


FLAGS = {f.name: f for f in (
    Flag("inventory", "i", "list", "inventory file, folder, script or host list (a,b,); repeat to merge "
         f"several in order (default {DEFAULT_INVENTORY})", "PATH"),
    Flag("limit", "l", "text", "only the hosts this Ansible host pattern selects (web*, proxies:!web2, "
         "a:&b, ~regex, @file)", "PATTERN"),
    Flag("check", "C", "bool", "report what would change, change nothing"),
    Flag("diff", "D", "bool", "show the differences of the files that change"),
    Flag("extra_vars", "e", "list", "variables over every inventory variable: key=value, YAML/JSON, or @FILE; "
         "repeatable", "VARS"),
    Flag("forks", "f", "int", "hosts handled in parallel (default 20)", "INT", 20, 1),
    Flag("verbose", "v", "count", "more output: -v unchanged steps too, -vv progress as lines, -vvv each "
         "script sent", default=0),
    Flag("ask_become_pass", "K", "bool", "ask once for the sudo password of a non-root login "
         "(or set PROVISION_SUDO_PASSWORD)"),
    Flag("list_hosts", None, "bool", "list the hosts it would act on, connect to none"),
    Flag("json", None, "text", "also write the result as JSON to this file (schema 1)", "PATH"),
    Flag("syntax_check", None, "bool", "check the inventory and render every file, connect to none; "
         "lists every problem"),
    Flag("accept_new_host_keys", None, "bool", "accept and remember unknown host keys (a changed key is "
         "always refused)"),
    Flag("mode", None, "text", "proxy mode for this run: single or balancer (as -e proxy_mode=MODE)", "MODE"),
    Flag("serial", None, "int", "roll backends out N at a time, each drained from the balancer while it changes",
         "N", None, 1),
    Flag("timeout", None, "int", "seconds to wait", "SECONDS", None, 1),
    Flag("junit", None, "text", "write a JUnit XML report (one test case per check per host) to this file", "PATH"),
    Flag("app", None, "text", "only this app's member", "NAME"),
    Flag("wait", None, "bool", "wait until no request to its members is in flight"),
    Flag("become", "b", "bool", "run it as root (sudo for a non-root login)"),
    Flag("graph", None, "bool", "the group tree (the default)"),
    Flag("host", None, "text", "one host's merged variables (secrets masked)", "NAME"),
    Flag("list", None, "bool", "everything, exactly as ansible-inventory --list prints it"),
    Flag("pattern", None, "positional", "an Ansible host pattern: web2, 'web*', backends:!web1", "PATTERN"),
    Flag("workers", None, "int", "processes the hosts are spread over (default 0: one per core, when there "
         "are at least 8 hosts per process)", "N", 0, 0),
    Flag("shard", None, "text", "only shard K of N of the selected hosts, by a hash of the host name: run the N "
         "shards anywhere, then `report merge` their --json files (docs/scale.md)", "K/N"),
    Flag("action", None, "positional", "what to do with the --json files given after --: merge", "merge"),
)}
MODES = ("single", "balancer")      # the inventory's PROXY_MODES (checked equal by a unit test)


def checked(flags: list[Flag], given: dict, json_to_stdout: bool = False) -> dict:
    """The values a command runs with: defaults filled in, every value checked (one-line
    UserError naming the flag); -K asks for the password here, before anything connects.
    ``json_to_stdout``: `--json -` prints the JSON instead of the usual lines."""
    values = {}
    for f in flags:
        value = given.get(f.name)
        if f.kind == "list":
            value = list(value or [])
        elif f.kind == "int":
            value = _integer(f, value)
        elif f.kind in ("bool", "count"):
            value = value or f.default or (0 if f.kind == "count" else False)
        elif value is None:
            value = f.default
        values[f.name] = value
    if "inventory" in values and not values["inventory"]:
        values["inventory"] = [DEFAULT_INVENTORY]
    if values.get("mode") is not None and values["mode"] not in MODES:
        raise UserError(f"--mode must be one of {', '.join(MODES)}, got {values['mode']!r}")
    if values.get("json") and not (values["json"] == "-" and json_to_stdout):
        writable(values["json"], "--json")
    if values.get("junit"):
        writable(values["junit"], "--junit")
    if values.get("ask_become_pass"):
        values["become_password"] = ask_password()
    return values


def _integer(f: Flag, value) -> int | None:
    if value is None or value == "":
        return f.default
    try:
        number = int(str(value), 10)
    except ValueError:
        raise UserError(f"{f.long} must be a whole number, got {value!r}") from None
    if f.minimum is not None and number < f.minimum:
        raise UserError(f"{f.long} must be {f.minimum} or more, got {number}")
    return number


def writable(path: str, flag: str) -> None:
    """The file can be written (its folder exists and is writable, it is not a folder)."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UserError(f"{flag} {path}: is a folder, expected a file")
    if not folder.is_dir():
        raise UserError(f"{flag} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or target.exists() and not os.access(target, os.W_OK):
        raise UserError(f"{flag} {path}: not writable")


def ask_password() -> str:
    """-K: the become (sudo) password, asked on the terminal, never echoed."""
    # lazy: getpass is needed only with -K
    import getpass
    if not sys.stdin.isatty():
        raise UserError("-K/--ask-become-pass needs a terminal to ask on; without one, set "
                        "PROVISION_SUDO_PASSWORD instead")
    try:
        return getpass.getpass("sudo password: ")
    except (EOFError, KeyboardInterrupt):
        raise UserError("-K/--ask-become-pass: no password given") from None
