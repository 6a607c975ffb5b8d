"""Load and validate an Ansible-style YAML inventory. Pure: reads files, never connects.

Format: ``all:`` / ``children:`` / ``hosts:`` / ``vars:``, with ``group_vars/`` and
``host_vars/`` folders beside the inventory file, as Ansible reads them.
Every problem raises InventoryError with one line naming the file, host and field.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import UserError
from .sites import model as sites

# Ansible's connection keys and our short forms.
CONNECTION_KEYS = {
    "ansible_host": "address", "host": "address",
    "ansible_user": "user", "user": "user",
    "ansible_port": "port", "port": "port",
    "ansible_ssh_private_key_file": "key", "key": "key",
}
# Other variables the roles and the engine read, and their types.
KNOWN_VARS = {
    "ssh_config": str,
    "accept_new_host_keys": bool,
    "apps": list,
    "private_address": str,
    "proxy_mode": str,
    "lbmethod": str,
    "server_name": str,
    "balancer_retry": int,
    "balancer_timeout": int,
    "balancer_connectiontimeout": int,
    "vault_repos": bool,
    "selinux_network_connect": bool,
    "firewalld_open_http": bool,
    "tls": str,
    "tls_cert": str,
    "tls_key": str,
    "tls_redirect": bool,
    "tls_hsts": bool,
    "tls_names": list,
    "health_path": str,
    "proxy_extra_directives": list,
    "balancer_failonstatus": list,
    "balancer_failontimeout": bool,
    "pools": dict,
    "sites": list,
    "become_password_env": str,
}
# Ansible keys we accept and ignore, so an existing Ansible inventory loads as it is.
IGNORED_ANSIBLE = re.compile(
    r"^ansible_(connection|python_interpreter|become|become_user|become_method|ssh_common_args"
    r"|ssh_extra_args|ssh_pass|password|become_pass|become_password)$")
PROXY_MODES = ("single", "balancer")
# heartbeat is left out: it needs mod_heartmonitor and a heartbeat sender on every backend.
LBMETHODS = ("byrequests", "bytraffic", "bybusyness")
TLS_MODES = ("off", "self-signed", "provided")
APP_KEYS = {"name", "port", "message"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
APP_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")
ROLE_GROUPS = ("proxies", "backends")


class InventoryError(UserError):
    """A one-line description of what is wrong and where."""


@dataclass
class Host:
    name: str
    address: str
    user: str | None = None             # None: ssh_config's User, else the local user
    port: int | None = None             # None: ssh_config's Port, else 22
    explicit_address: bool = True       # False: taken from ssh_config's HostName at connect time
    key: str | None = None
    ssh_config: str | None = None
    groups: list[str] = field(default_factory=list)
    vars: dict = field(default_factory=dict)

    @property
    def private_address(self) -> str:
        """The address backends bind to and the proxy connects to."""
        return self.vars.get("private_address") or self.address

    @property
    def apps(self) -> list[dict]:
        return self.vars.get("apps") or []


@dataclass
class Inventory:
    path: Path
    hosts: dict[str, Host]
    groups: dict[str, list[str]]

    def group(self, name: str) -> list[Host]:
        return [self.hosts[h] for h in self.groups.get(name, [])]

    def select(self, limit: str | None) -> list[Host]:
        """Hosts matching a comma-separated list of host and group names."""
        if not limit:
            return list(self.hosts.values())
        chosen: list[str] = []
        for part in (p.strip() for p in limit.split(",")):
            if not part:
                continue
            if part in self.hosts:
                names = [part]
            elif part in self.groups:
                names = self.groups[part]
            else:
                raise InventoryError(f"{self.path}: --limit: no host or group named {part!r}")
            chosen += [n for n in names if n not in chosen]
        return [self.hosts[n] for n in chosen]


def load(path: str | Path) -> Inventory:
    path = Path(path)
    data = _read_yaml(path, required=True)
    if not isinstance(data, dict) or set(data) != {"all"}:
        raise InventoryError(f"{path}: top level must be a single 'all:' group")
    hosts: dict[str, dict] = {}       # name -> {"vars": merged, "groups": [...], "origin": file}
    groups: dict[str, list[str]] = {}
    group_vars: dict[str, dict] = {}
    parents: dict[str, list[str]] = {}
    _walk_group(path, "all", data["all"], [], hosts, groups, group_vars, parents)
    base = path.parent
    for gname in list(groups):
        extra = _read_vars_dir(base / "group_vars", gname)
        if extra:
            group_vars[gname] = {**extra, **group_vars.get(gname, {})}
    for gfile in _listing(base / "group_vars"):
        if gfile not in groups:
            raise InventoryError(f"{base / 'group_vars' / gfile}: group {gfile!r} does not exist in {path.name}")
    for hfile in _listing(base / "host_vars"):
        if hfile not in hosts:
            raise InventoryError(f"{base / 'host_vars' / hfile}: host {hfile!r} does not exist in {path.name}")
    result: dict[str, Host] = {}
    for name, info in hosts.items():
        merged: dict = {}
        for g in _ancestry(info["groups"], parents):
            merged.update(group_vars.get(g, {}))
        merged.update(info["vars"])
        merged.update(_read_vars_dir(base / "host_vars", name))
        result[name] = _make_host(path, name, merged, sorted(set(info["groups"]) - {"all"}))
    _check_cross_host(path, result)
    return Inventory(path=path, hosts=result, groups={g: m for g, m in groups.items() if g != "all"})


def _read_yaml(path: Path, required: bool = False):
    try:
        text = path.read_text()
    except FileNotFoundError:
        if required:
            raise InventoryError(f"{path}: no such inventory file") from None
        return None
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise InventoryError(f"{path}:{where}: {problem}") from None


def _listing(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted({p.stem if p.suffix in (".yml", ".yaml") else p.name for p in folder.iterdir()
                   if not p.name.startswith(".")})


def _read_vars_dir(folder: Path, name: str) -> dict:
    merged: dict = {}
    for candidate in (folder / name, folder / f"{name}.yml", folder / f"{name}.yaml"):
        if candidate.is_dir():
            for part in sorted(candidate.glob("*.y*ml")):
                merged.update(_vars_file(part))
        elif candidate.is_file():
            merged.update(_vars_file(candidate))
    return merged


def _vars_file(path: Path) -> dict:
    data = _read_yaml(path) or {}
    if not isinstance(data, dict):
        raise InventoryError(f"{path}: must hold a mapping of variables")
    return data


def _walk_group(path, gname, body, lineage, hosts, groups, group_vars, parents):
    if gname in lineage:
        raise InventoryError(f"{path}: group {gname!r}: is its own ancestor")
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InventoryError(f"{path}: group {gname!r}: must be a mapping with hosts/children/vars")
    unknown = set(body) - {"hosts", "children", "vars"}
    if unknown:
        raise InventoryError(f"{path}: group {gname!r}: unknown key {sorted(unknown)[0]!r} "
                             "(expected hosts, children or vars)")
    if lineage:
        parents.setdefault(gname, [])
        if lineage[-1] not in parents[gname]:
            parents[gname].append(lineage[-1])
    members = groups.setdefault(gname, [])
    gvars = body.get("vars") or {}
    if not isinstance(gvars, dict):
        raise InventoryError(f"{path}: group {gname!r}: field 'vars' must be a mapping")
    for key in gvars:
        _check_var(path, f"group {gname!r}", key, gvars[key])
    group_vars.setdefault(gname, {}).update(gvars)
    ghosts = body.get("hosts") or {}
    if not isinstance(ghosts, dict):
        raise InventoryError(f"{path}: group {gname!r}: field 'hosts' must be a mapping of host names")
    for hname, hvars in ghosts.items():
        hname = str(hname)
        if not NAME_RE.match(hname):
            raise InventoryError(f"{path}: host {hname!r}: invalid host name")
        hvars = hvars or {}
        if not isinstance(hvars, dict):
            raise InventoryError(f"{path}: host {hname!r}: must be a mapping of variables")
        if hname in hosts and hvars and hosts[hname]["vars"]:
            raise InventoryError(f"{path}: host {hname!r}: defined twice (in {hosts[hname]['groups'][0]!r} "
                                 f"and {gname!r}); give its variables once")
        for key in hvars:
            _check_var(path, f"host {hname!r}", key, hvars[key])
        entry = hosts.setdefault(hname, {"vars": {}, "groups": []})
        entry["vars"].update(hvars)
        entry["groups"].append(gname)
        if hname not in members:
            members.append(hname)
    children = body.get("children") or {}
    if not isinstance(children, dict):
        raise InventoryError(f"{path}: group {gname!r}: field 'children' must be a mapping of groups")
    for cname, cbody in children.items():
        _walk_group(path, str(cname), cbody, lineage + [gname], hosts, groups, group_vars, parents)
        for h in groups[str(cname)]:
            if h not in members:
                members.append(h)


def _ancestry(direct: list[str], parents: dict[str, list[str]]) -> list[str]:
    """Groups from the most general ('all') to the most specific, as Ansible merges them."""
    order: list[str] = []

    def visit(g, depth):
        for p in parents.get(g, []):
            visit(p, depth + 1)
        if g not in order:
            order.append(g)
    for g in direct:
        visit(g, 0)
    if "all" in order:
        order.remove("all")
    return ["all"] + order


def _check_var(path, where, key, value):
    key = str(key)
    if key in CONNECTION_KEYS or IGNORED_ANSIBLE.match(key):
        return
    if key not in KNOWN_VARS:
        raise InventoryError(f"{path}: {where}: unknown field {key!r}")
    want = KNOWN_VARS[key]
    if want is int and isinstance(value, bool) or not isinstance(value, want):
        raise InventoryError(f"{path}: {where}: field {key!r} must be {want.__name__}, "
                             f"got {type(value).__name__}")


def _make_host(path: Path, name: str, merged: dict, groups: list[str]) -> Host:
    where = f"{path}: host {name!r}"
    conn = {}
    for key, value in merged.items():
        if key in CONNECTION_KEYS:
            conn[CONNECTION_KEYS[key]] = value
    extra = {k: v for k, v in merged.items() if k not in CONNECTION_KEYS and not IGNORED_ANSIBLE.match(str(k))}
    address = conn.get("address")
    ssh_config = extra.get("ssh_config")
    if ssh_config:
        ssh_config = str((path.parent / ssh_config).resolve()) if not Path(ssh_config).is_absolute() \
            else ssh_config
    if address is None:
        if not ssh_config:
            raise InventoryError(f"{where}: field 'ansible_host' is missing (no address, and no ssh_config)")
        address = name
        explicit = False
    else:
        explicit = True
    if not isinstance(address, str) or not address.strip() or any(c.isspace() for c in address):
        raise InventoryError(f"{where}: field 'ansible_host' must be a host name or address")
    port = conn.get("port")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
        raise InventoryError(f"{where}: field 'ansible_port' must be a port number 1-65535, got {port!r}")
    user = conn.get("user")
    if user is not None and not isinstance(user, str) or user is not None and not re.match(r"^[a-z_][a-z0-9_.-]*\$?$", user):
        raise InventoryError(f"{where}: field 'ansible_user' is not a valid user name: {user!r}")
    key = conn.get("key")
    if key is not None:
        if not isinstance(key, str):
            raise InventoryError(f"{where}: field 'ansible_ssh_private_key_file' must be a path")
        key = str((path.parent / Path(key).expanduser()).resolve())
    private = extra.get("private_address")
    if private is not None:
        try:
            ipaddress.ip_address(private)
        except ValueError:
            raise InventoryError(f"{where}: field 'private_address' is not an IP address: {private!r}") from None
    _check_role_vars(where, extra)
    return Host(name=name, address=address, user=user, port=port, key=key, ssh_config=ssh_config,
                explicit_address=explicit, groups=groups, vars=extra)


def _check_role_vars(where: str, v: dict):
    mode = v.get("proxy_mode")
    if mode is not None and mode not in PROXY_MODES:
        raise InventoryError(f"{where}: field 'proxy_mode' must be one of {', '.join(PROXY_MODES)}, got {mode!r}")
    lb = v.get("lbmethod")
    if lb is not None and lb not in LBMETHODS:
        raise InventoryError(f"{where}: field 'lbmethod' must be one of {', '.join(LBMETHODS)}, got {lb!r}")
    tls = v.get("tls")
    if tls is not None and tls not in TLS_MODES:
        raise InventoryError(f"{where}: field 'tls' must be one of {', '.join(TLS_MODES)}, got {tls!r}")
    if tls == "provided" and not (v.get("tls_cert") and v.get("tls_key")):
        raise InventoryError(f"{where}: field 'tls_cert'/'tls_key' are required with tls: provided")
    for i, n in enumerate(v.get("tls_names") or []):
        if not isinstance(n, str) or not re.match(r"^[A-Za-z0-9.*:-]+$", n):
            raise InventoryError(f"{where}: field 'tls_names[{i}]' must be a host name or address, got {n!r}")
    for k in ("balancer_retry", "balancer_timeout", "balancer_connectiontimeout"):
        if k in v and not 0 <= v[k] <= 3600:
            raise InventoryError(f"{where}: field {k!r} must be 0-3600 seconds, got {v[k]!r}")
    name = v.get("server_name")
    if name is not None and not re.match(r"^[A-Za-z0-9.*-]+$", name):
        raise InventoryError(f"{where}: field 'server_name' is not a host name: {name!r}")
    health = v.get("health_path")
    if health is not None and not re.match(r"^/[A-Za-z0-9._/-]*$", health):
        raise InventoryError(f"{where}: field 'health_path' must be a URL path like /health, got {health!r}")
    for i, line in enumerate(v.get("proxy_extra_directives") or []):
        if not isinstance(line, str) or not line.strip() or any(ord(c) < 32 and c != "\t" for c in line):
            raise InventoryError(f"{where}: field 'proxy_extra_directives[{i}]' must be one directive on one line")
    _sites_checked(sites.validate, v, where)
    for i, code in enumerate(v.get("balancer_failonstatus") or []):
        if isinstance(code, bool) or not isinstance(code, int) or not 500 <= code <= 599:
            raise InventoryError(f"{where}: field 'balancer_failonstatus[{i}]' must be a 5xx status, got {code!r}")
    seen_ports: dict[int, str] = {}
    seen_names: set[str] = set()
    for i, app in enumerate(v.get("apps") or []):
        field_ = f"apps[{i}]"
        if not isinstance(app, dict):
            raise InventoryError(f"{where}: field '{field_}' must be a mapping with name, port, message")
        unknown = set(app) - APP_KEYS
        if unknown:
            raise InventoryError(f"{where}: field '{field_}.{sorted(unknown)[0]}' is unknown "
                                 "(apps take name, port, message)")
        missing = APP_KEYS - set(app)
        if missing:
            raise InventoryError(f"{where}: field '{field_}.{sorted(missing)[0]}' is missing")
        aname, port, message = app["name"], app["port"], app["message"]
        if not isinstance(aname, str) or not APP_NAME_RE.match(aname):
            raise InventoryError(f"{where}: field '{field_}.name' must be lowercase letters, digits, - or _, "
                                 f"got {aname!r}")
        if aname in seen_names:
            raise InventoryError(f"{where}: field '{field_}.name': two apps named {aname!r}")
        seen_names.add(aname)
        if isinstance(port, bool) or not isinstance(port, int) or not 1024 <= port <= 65535:
            raise InventoryError(f"{where}: field '{field_}.port' must be a port number 1024-65535, got {port!r}")
        if port in seen_ports:
            raise InventoryError(f"{where}: field '{field_}.port': port {port} is already used by app "
                                 f"{seen_ports[port]!r}")
        seen_ports[port] = aname
        if not isinstance(message, str) or not message or len(message) > 200 \
                or any(ord(c) < 32 for c in message):
            raise InventoryError(f"{where}: field '{field_}.message' must be one line of 1-200 printable characters")


def _sites_checked(check, *args):
    try:
        check(*args)
    except sites.SitesError as exc:
        raise InventoryError(str(exc)) from None


class _Groups:
    """The little of an Inventory that resolving pool members needs, before the Inventory exists."""

    def __init__(self, hosts: dict[str, Host]):
        self.hosts = hosts

    def group(self, name: str) -> list[Host]:
        return [h for h in self.hosts.values() if name in h.groups]


def _check_cross_host(path: Path, hosts: dict[str, Host]):
    seen: dict[tuple, str] = {}
    for h in hosts.values():
        _sites_checked(sites.check_references, _Groups(hosts), h, f"{path}: host {h.name!r}")
        k = (h.address, h.port or 22)
        if k in seen:
            raise InventoryError(f"{path}: host {h.name!r}: field 'ansible_host': {h.address}:{k[1]} is "
                                 f"already host {seen[k]!r}")
        seen[k] = h.name
        if h.apps and "backends" not in h.groups:
            raise InventoryError(f"{path}: host {h.name!r}: field 'apps' is set but the host is not in group "
                                 "'backends'")
