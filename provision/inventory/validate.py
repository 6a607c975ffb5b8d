"""Validation of the variables our roles and the SSH transport read, on each host's MERGED
variables, wherever they came from (inventory file, group_vars/, host_vars/). Any other
variable is allowed, as in Ansible. Every error is one line naming the file that set the value.

Connection values reach ssh_config and command lines, so they are checked strictly: host
names or addresses only, no control characters, nothing that starts like an option.
"""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from .. import openssh, syntax
from ..sites import model as sites
from . import apps
from .errors import InventoryError
from .graph import control_character
from .model import Host

# The variables the roles and the engine read, and their types.
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
    "balancer_active_health": bool,
    "pools": dict,
    "sites": list,
    "become_password_env": str,
    "public_url": str,
    "member_names": str,
    # tls: acme
    "acme_directory": str,
    "acme_email": str,
    "acme_agree_tos": bool,
    "acme_client": str,
    "acme_directory_ca": str,
    "acme_root": str,
    "acme_renew_window": str,
}
# Ansible's connection variables; for each field the later spelling wins, as in Ansible's ssh plugin.
CONNECTION_VARS = {
    "address": ("ansible_host", "ansible_ssh_host"),
    "port": ("ansible_port", "ansible_ssh_port"),
    "user": ("ansible_user", "ansible_ssh_user"),
    "key": ("ansible_private_key_file", "ansible_ssh_private_key_file"),
    "become": ("ansible_become",),
    "become_method": ("ansible_become_method",),
    "become_user": ("ansible_become_user",),
    # ansible.builtin.sudo's become_pass vars, in its order (the later one wins)
    "become_password": ("ansible_become_password", "ansible_become_pass", "ansible_sudo_pass"),
    "ssh_args": ("ansible_ssh_common_args", "ansible_ssh_extra_args"),
}
# Never printed: masked in `invoke inventory`, kept out of Host.vars.
SECRET_VARS = frozenset({"ansible_become_pass", "ansible_become_password", "ansible_sudo_pass",
                         "ansible_ssh_pass", "ansible_password", "ansible_ssh_password"})
SSH_PASSWORD_VARS = ("ansible_password", "ansible_ssh_pass", "ansible_ssh_password")
SSH_CONNECTIONS = ("ssh", "smart", "paramiko", "paramiko_ssh")
PROXY_MODES = ("single", "balancer")
# heartbeat is left out: it needs mod_heartmonitor and a heartbeat sender on every backend.
LBMETHODS = ("byrequests", "bytraffic", "bybusyness")
TLS_MODES = ("off", "self-signed", "provided", "acme")
ACME_CLIENTS = ("auto", "control")      # auto: mod_md where the release has it, else the control machine
USER_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\$?", re.I)
HEALTH_PATH_RE = re.compile(r"/[A-Za-z0-9._/-]*")
EMAIL_RE = re.compile(r"[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
RENEW_WINDOW_RE = re.compile(r"[1-9][0-9]{0,6}[dhs]")
ACME_NAME_RE = re.compile(r"(?=.{1,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,61}[A-Za-z0-9]")
JUMP_RE = re.compile(r"(?:(?P<user>[^@\s]+)@)?(?P<host>\[[^\]]+\]|[^:\s]+)(?::(?P<port>[0-9]{1,5}))?")
TRUE = ("yes", "on", "1", "true", "y", "t")
FALSE = ("no", "off", "0", "false", "n", "f")


SCOPED = "is a scoped IPv6 address (a zone ID after '%'), which is not supported: give the address without it"


def host_or_address(value) -> bool:
    """A DNS-style host name or an IP address (no zone ID); nothing an ssh command line could read
    as an option."""
    if not isinstance(value, str) or not value or value.startswith("-"):
        return False
    return syntax.host_name(value) or syntax.ip_address(value) is not None     # IPv4 is a host name too


def build_host(name: str, merged: dict, origins: dict, groups: list[str], base: Path) -> Host:
    """A Host from merged variables. Role variables are checked here (errors raise); connection
    problems make the host unusable, raised when something chooses it."""
    check_role_vars(name, merged, origins)
    host = Host(name=name, address=name, groups=groups, origins=origins,
                vars={k: v for k, v in merged.items() if k not in SECRET_VARS})
    try:
        _connection(host, merged, origins, base)
    except InventoryError as exc:
        host.unusable = str(exc)
    return host


def _where(origins: dict, key: str, host: str) -> str:
    return f"{origins.get(key, '?')}: host {host!r}"


def _last(merged: dict, names: tuple[str, ...]) -> tuple[str | None, object]:
    found = (None, None)
    for n in names:
        if n in merged:
            found = (n, merged[n])
    return found


def _text(host: str, origins: dict, key: str, value, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InventoryError(f"{_where(origins, key, host)}: field {key!r} must be {what}, got {value!r}")
    bad = control_character(value)
    if bad is not None:
        raise InventoryError(f"{_where(origins, key, host)}: field {key!r} contains the control character {bad!r}")
    return value


def _connection(host: Host, merged: dict, origins: dict, base: Path):
    name = host.name
    connection = merged.get("ansible_connection")
    if connection is not None and connection not in SSH_CONNECTIONS:
        raise InventoryError(f"{_where(origins, 'ansible_connection', name)}: field 'ansible_connection' is "
                             f"{connection!r}; only ssh is supported")
    password = next((k for k in SSH_PASSWORD_VARS if k in merged), None)
    if password:        # refused, never used silently; the value itself is never printed
        raise InventoryError(f"{_where(origins, password, name)}: field {password!r} is set, but SSH password "
                             f"login is not supported: use a key (ansible_ssh_private_key_file) or an agent")
    ssh_config = merged.get("ssh_config")
    if ssh_config is not None:
        ssh_config = _text(name, origins, "ssh_config", ssh_config, "a path")
        host.ssh_config = ssh_config if Path(ssh_config).is_absolute() else str((base / ssh_config).resolve())
    key, address = _last(merged, CONNECTION_VARS["address"])
    if key is None:
        key, address = "inventory name", name
        host.explicit_address = not host.ssh_config
        if host.ssh_config:
            key, address = "HostName", _ssh_config_hostname(host.ssh_config, name)
    if isinstance(address, str) and address and key != "inventory name":
        _text(name, origins, key, address, "a host name or an IP address")
    if not host_or_address(address):
        why = SCOPED if isinstance(address, str) and "%" in address else "must be a host name or an IP address"
        raise InventoryError(f"{_where(origins, key, name)}: field {key!r} {why}, got {address!r}")
    host.address = address
    key, port = _last(merged, CONNECTION_VARS["port"])
    if isinstance(port, str) and port.isdigit() and port.isascii():
        port = int(port)
    if key and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
        raise InventoryError(f"{_where(origins, key, name)}: field {key!r} must be a port number 1-65535, "
                             f"got {port!r}")
    host.port = port
    host.user = _user(name, merged, origins, "user")
    key, path = _last(merged, CONNECTION_VARS["key"])
    if key:
        path = _text(name, origins, key, path, "a path")
        host.key = str((base / Path(path).expanduser()).resolve())
    _become(host, merged, origins)
    _ssh_args(host, merged, origins, base)


_SSH_CONFIGS: dict[str, object] = {}


def _ssh_config_hostname(path: str, name: str) -> str:
    """The address ssh_config gives the inventory name (the name itself when it gives none):
    the proxy and the checks need a real address for a host listed by name only."""
    # lazy: paramiko costs ~100 ms of start-up, needed only for an inventory naming an ssh_config
    import paramiko
    try:
        key = (path, os.stat(path).st_mtime_ns)
        if key not in _SSH_CONFIGS:
            _SSH_CONFIGS[key] = paramiko.SSHConfig.from_path(path)
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read ssh_config: {exc.strerror}") from None
    return _SSH_CONFIGS[key].lookup(name).get("hostname", name)


def _become(host: Host, merged: dict, origins: dict):
    name = host.name
    if "ansible_become" in merged:
        host.become = _boolean(name, origins, "ansible_become", merged["ansible_become"])
    method = merged.get("ansible_become_method")
    if method is not None and method != "sudo":
        raise InventoryError(f"{_where(origins, 'ansible_become_method', name)}: field 'ansible_become_method' "
                             f"is {method!r}; only sudo is supported")
    host.become_user = _user(name, merged, origins, "become_user")
    if host.become_user not in (None, "root"):
        raise InventoryError(f"{_where(origins, 'ansible_become_user', name)}: field 'ansible_become_user' is "
                             f"{host.become_user!r}; the roles run as root, so only root is supported")
    key, secret = _last(merged, CONNECTION_VARS["become_password"])
    if key:
        if not isinstance(secret, str) or control_character(secret) is not None:
            raise InventoryError(f"{_where(origins, key, name)}: field {key!r} must be one line of text "
                                 "(value not shown)")
        host.become_password = secret


def _user(name: str, merged: dict, origins: dict, field_: str) -> str | None:
    key, user = _last(merged, CONNECTION_VARS[field_])
    if key and (not isinstance(user, str) or not USER_RE.fullmatch(user)):
        raise InventoryError(f"{_where(origins, key, name)}: field {key!r} is not a valid user name: {user!r}")
    return user


def _boolean(host: str, origins: dict, key: str, value) -> bool:
    """Ansible's boolean(): real booleans, 0/1, and yes/no/true/false/on/off as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
        return value.strip().lower() in TRUE
    raise InventoryError(f"{_where(origins, key, host)}: field {key!r} must be a boolean, got {value!r}")


# The ssh options (`-o Key=Value`) of ansible_ssh_common_args/extra_args the transport honours.
# The connection is held for the whole run, so OpenSSH's multiplexing options change nothing.
MULTIPLEXING = ("controlmaster", "controlpersist", "controlpath")
HONOURED = ("ProxyJump (or -J), StrictHostKeyChecking yes/accept-new, UserKnownHostsFile, "
            "ControlMaster, ControlPersist, ControlPath")


def _ssh_args(host: Host, merged: dict, origins: dict, base: Path):
    """ansible_ssh_common_args then ansible_ssh_extra_args, split as a shell does (shlex), in the
    order Ansible puts them on ssh's command line; as in OpenSSH, an option's first value wins.
    Any option the transport cannot honour is refused rather than silently dropped."""
    seen: set[str] = set()
    for key in CONNECTION_VARS["ssh_args"]:
        if merged.get(key) in (None, ""):
            continue
        where = f"{_where(origins, key, host.name)}: field {key!r}"
        for written, value in _ssh_words(where, _text(host.name, origins, key, merged[key], "ssh options")):
            option = written.lower()
            if option in seen:
                continue
            seen.add(option)
            if option == "proxyjump":
                host.proxy_jump = _check_jump(where, value)
            elif option == "stricthostkeychecking":
                if value.lower() not in ("yes", "accept-new"):
                    raise InventoryError(f"{where}: StrictHostKeyChecking={value} is not supported: host keys are "
                                         "always checked (accept-new, or --accept-new-host-keys, trusts new hosts once)")
                host.host_key_checking = value.lower()
            elif option == "userknownhostsfile":
                files = value.split()
                if not files or any(control_character(f) is not None for f in files):
                    raise InventoryError(f"{where}: UserKnownHostsFile needs one or more paths")
                host.known_hosts = " ".join(str((base / Path(f).expanduser()).resolve()) for f in files)
                problem = next(filter(None, map(openssh.known_hosts_problem, host.known_hosts.split())), None)
                if problem:
                    raise InventoryError(f"{where}: UserKnownHostsFile: {problem}")
            elif option not in MULTIPLEXING:
                raise InventoryError(f"{where}: ssh option {written!r} is not supported "
                                     f"(only {HONOURED})")


def _ssh_words(where: str, text: str):
    """(option, value) for each `-o Key=Value`, `-oKey=Value`, `-o 'Key Value'` and `-J HOST`."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise InventoryError(f"{where}: {exc}") from None
    while words:
        flag = words.pop(0)
        if flag in ("-J", "-o"):
            value = words.pop(0) if words else ""
        elif flag[:2] in ("-J", "-o"):
            flag, value = flag[:2], flag[2:]
        else:
            raise InventoryError(f"{where}: {flag!r} is not supported (only -o Key=Value or -J HOST, with {HONOURED})")
        if flag == "-J":
            yield "ProxyJump", value.strip()
            continue
        option, _, value = value.strip().replace("=", " ", 1).partition(" ")
        if not option or not value.strip():
            raise InventoryError(f"{where}: -o {option!r} needs a value (-o Key=Value)")
        yield option, value.strip()


def _check_jump(where: str, value: str) -> str:
    for hop in value.split(","):
        m = JUMP_RE.fullmatch(hop)
        if not m or not host_or_address(m.group("host").strip("[]")) or \
                m.group("user") and not USER_RE.fullmatch(m.group("user")):
            raise InventoryError(f"{where}: jump host {hop!r} must be [user@]host[:port]")
    return value


def check_role_vars(name: str, v: dict, origins: dict):
    def where(key):
        return _where(origins, key, name)

    for key, want in KNOWN_VARS.items():
        if key not in v:
            continue
        value = v[key]
        if want is int and isinstance(value, bool) or not isinstance(value, want):
            raise InventoryError(f"{where(key)}: field {key!r} must be {want.__name__}, got "
                                 f"{type(value).__name__} {value!r}")
        if want is str:
            _text(name, origins, key, value, "text")
    _suggest(name, v, origins)
    for key, choices in (("proxy_mode", PROXY_MODES), ("lbmethod", LBMETHODS), ("tls", TLS_MODES),
                         ("member_names", sites.MEMBER_NAMES)):
        if key in v and v[key] not in choices:
            raise InventoryError(f"{where(key)}: field {key!r} must be one of {', '.join(choices)}, got {v[key]!r}")
    if v.get("tls") == "provided" and not (v.get("tls_cert") and v.get("tls_key")):
        raise InventoryError(f"{where('tls')}: field 'tls_cert'/'tls_key' are required with tls: provided")
    for i, n in enumerate(v.get("tls_names") or []):
        if not isinstance(n, str) or not (syntax.dns_name(n, wildcard=True) or syntax.ip_address(n)):
            raise InventoryError(f"{where('tls_names')}: field 'tls_names[{i}]' must be a host name or address, "
                                 f"got {n!r}")
    if v.get("tls") == "acme":
        _check_acme(name, v, where)
    for k in ("balancer_retry", "balancer_timeout", "balancer_connectiontimeout"):
        if k in v and not 0 <= v[k] <= 3600:
            raise InventoryError(f"{where(k)}: field {k!r} must be 0-3600 seconds, got {v[k]!r}")
    if "server_name" in v and not syntax.dns_name(v["server_name"], wildcard=True):
        raise InventoryError(f"{where('server_name')}: field 'server_name' is not a host name: {v['server_name']!r}")
    if "health_path" in v and not HEALTH_PATH_RE.fullmatch(v["health_path"]):
        raise InventoryError(f"{where('health_path')}: field 'health_path' must be a URL path like /health, "
                             f"got {v['health_path']!r}")
    if "private_address" in v:
        _private_address(where("private_address"), v["private_address"])
    for i, line in enumerate(v.get("proxy_extra_directives") or []):
        if not isinstance(line, str) or not line.strip() or any(ord(c) < 32 and c != "\t" for c in line) \
                or control_character(line.replace("\t", " ")) is not None:
            raise InventoryError(f"{where('proxy_extra_directives')}: field 'proxy_extra_directives[{i}]' must "
                                 "be one directive on one line")
        if line.rstrip().endswith("\\"):        # Apache would join the next line to it
            raise InventoryError(f"{where('proxy_extra_directives')}: field 'proxy_extra_directives[{i}]' must "
                                 "be one directive on one line, not end with '\\' (a continuation)")
    sites_checked(sites.validate, v, where("sites" if "sites" in v else "pools"))
    for i, code in enumerate(v.get("balancer_failonstatus") or []):
        if isinstance(code, bool) or not isinstance(code, int) or not 500 <= code <= 599:
            raise InventoryError(f"{where('balancer_failonstatus')}: field 'balancer_failonstatus[{i}]' must be a "
                                 f"5xx status, got {code!r}")
    apps.check_apps(where("apps"), v.get("apps") or [], origins.get("apps"))


def sites_checked(check, *args):
    """The sites model's own checks, its errors as inventory errors."""
    try:
        check(*args)
    except sites.SitesError as exc:
        raise InventoryError(str(exc)) from None


def _private_address(where: str, value: str):
    address = syntax.ip_address(value)
    if address is None:
        why = SCOPED if "%" in value else "is not an IP address"
        raise InventoryError(f"{where}: field 'private_address' {why}: {value!r}")
    if address.is_unspecified or address.is_multicast:
        raise InventoryError(f"{where}: field 'private_address' must be one specific address, not "
                             f"{value!r} (a wildcard would expose the apps on every interface)")


_SUGGESTIONS: dict[str, str | None] = {}


def _check_acme(name: str, v: dict, where):
    """tls: acme: the CA's terms accepted, a contact address, an https directory, and names a CA can
    check over HTTP-01 (public DNS names: no address, no wildcard, no bare host name)."""
    if v.get("acme_agree_tos") is not True:
        raise InventoryError(f"{where('acme_agree_tos' if 'acme_agree_tos' in v else 'tls')}: field 'acme_agree_tos' "
                             "must be true with tls: acme (you accept the ACME CA's terms of service)")
    if not EMAIL_RE.fullmatch(v.get("acme_email") or ""):
        raise InventoryError(f"{where('acme_email' if 'acme_email' in v else 'tls')}: field 'acme_email' must be "
                             f"an email address with tls: acme (the CA's contact), got {v.get('acme_email')!r}")
    directory = v.get("acme_directory")
    if directory is not None and not re.fullmatch(r"https://[^\s/?#]+(/[^\s?#]*)?", directory):
        raise InventoryError(f"{where('acme_directory')}: field 'acme_directory' must be an https:// ACME "
                             f"directory URL, got {directory!r}")
    if v.get("acme_client", "auto") not in ACME_CLIENTS:
        raise InventoryError(f"{where('acme_client')}: field 'acme_client' must be one of {', '.join(ACME_CLIENTS)}, "
                             f"got {v['acme_client']!r}")
    if "acme_renew_window" in v and not RENEW_WINDOW_RE.fullmatch(v["acme_renew_window"]):
        raise InventoryError(f"{where('acme_renew_window')}: field 'acme_renew_window' must be a duration such as "
                             f"30d, 72h or 3600s, got {v['acme_renew_window']!r}")
    for n in sites.served_names(v, name) + list(v.get("tls_names") or []):
        if not isinstance(n, str) or not ACME_NAME_RE.fullmatch(n):
            raise InventoryError(f"{where('tls')}: tls: acme: {n!r} is not a DNS name an ACME CA can validate over "
                                 "HTTP-01 (no address, no wildcard, a dot in it): set server_name, sites or tls_names")


def _suggest(name: str, v: dict, origins: dict):
    """`proxy_mdoe` is refused with "did you mean 'proxy_mode'?": one or two edits from a name we read."""
    for key in v:
        if key in KNOWN_VARS or key.startswith("ansible_"):
            continue
        if key not in _SUGGESTIONS:
            _SUGGESTIONS[key] = _closest(key)
        near = _SUGGESTIONS[key]
        if near:
            raise InventoryError(f"{_where(origins, key, name)}: unknown field {key!r} (did you mean {near!r}?)")


def _closest(key: str) -> str | None:
    if len(key) < 5:
        return None
    limit = 1 if len(key) < 8 else 2
    for known in KNOWN_VARS:
        if key == known + "s" or known == key + "s":
            continue        # a plural is a different variable, not a typo
        if abs(len(known) - len(key)) <= limit and _distance(key, known) <= limit:
            return known
    return None


def _distance(a: str, b: str) -> int:
    """Edit distance counting a swap of two neighbours as one edit (optimal string alignment)."""
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if prev2 is not None and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]
