"""The Apache config tree a CentOS 7 proxy has after a deploy, and the same tree rewritten so that
Debian's apache2 binary can check it (``apache2 -t``) from a temp folder. Pure: the caller reads
the stock files and the host's module list; nothing here touches disk or network."""
from __future__ import annotations

import posixpath
import re

from provision.platforms import REDHAT
from provision.resources import Absent, File, Link, Packages
from provision.roles import proxy

CONF_DIR = REDHAT.apache_conf_dir            # /etc/httpd
DEBIAN_MODULES = "/usr/lib/apache2/modules"
NOT_IN_BUILD = "# not in this build: "
BUILT_IN = "# built into this binary: "

# Stock files by package, as the package installs them -> the file's name under the fixtures'
# centos7/ folder (tests/fixtures/SOURCES.md: httpd-2.4.6-45.el7.centos sources; which package owns
# which file: the %files lists of that SRPM's httpd.spec, where httpd "%exclude"s 00-ssl.conf,
# 00-proxyhtml.conf, 01-ldap.conf and 01-session.conf). A package the proxy role installs brings
# its files into the tree; add a package or a file here.
STOCK_FILES = {
    "httpd": {
        "/etc/httpd/conf/httpd.conf": "httpd.conf",
        **{f"/etc/httpd/conf.modules.d/{n}": f"conf.modules.d/{n}" for n in (
            "00-base.conf", "00-dav.conf", "00-lua.conf", "00-mpm.conf", "00-proxy.conf",
            "00-systemd.conf", "01-cgi.conf")},
        "/etc/httpd/conf.d/welcome.conf": "conf.d/welcome.conf",
    },
    # mod_ssl also ships conf.d/ssl.conf (not among the fixtures): with tls on, the proxy role
    # writes its own ssl.conf over it, so the tree holds that File (files/ssl-redhat.conf).
    "mod_ssl": {"/etc/httpd/conf.modules.d/00-ssl.conf": "conf.modules.d/00-ssl.conf"},
    # Subpackages the role does not install:
    "mod_proxy_html": {"/etc/httpd/conf.modules.d/00-proxyhtml.conf": "conf.modules.d/00-proxyhtml.conf"},
    "mod_ldap": {"/etc/httpd/conf.modules.d/01-ldap.conf": "conf.modules.d/01-ldap.conf"},
    "mod_session": {"/etc/httpd/conf.modules.d/01-session.conf": "conf.modules.d/01-session.conf"},
}

# CentOS 7 -> Debian 12 apache2, every rewrite map_for_debian_binary makes, with its reason.
# ("{root}" is the temp folder.)
PATH_MAP = (
    # (CentOS path prefix, replacement, reason)
    (CONF_DIR, "{root}", "ServerRoot and every absolute path into the config tree move to the temp folder"),
    ("/var/www", "{root}/www", "a missing DocumentRoot fails -t (\"is not a directory\"); keep it in root"),
    ("/usr/share/httpd", "{root}/share", "welcome.conf's noindex pages (httpd package): not on Debian"),
    ("/var/log/httpd", "{root}/logs", "CentOS's logs folder (/etc/httpd/logs links to it)"),
    ("/run/httpd", "{root}/run", "CentOS's runtime folder (/etc/httpd/run links to it; ssl.conf's cache)"),
)
LINE_MAP = (
    # (directive, CentOS value, Debian value, reason)
    ("User", "apache", "www-data", "an unknown user fails -t (AH00543 bad user name); Debian's Apache user"),
    ("Group", "apache", "www-data", "the same for the group"),
)
MODULE_MAP = (
    # (CentOS LoadModule path, Debian LoadModule line, reason)
    ("modules/mod_X.so", f"{DEBIAN_MODULES}/mod_X.so",
     "CentOS's /etc/httpd/modules links to /usr/lib64/httpd/modules; Debian keeps them here"),
    ("modules/mod_X.so, built into apache2 (apache2 -l)", BUILT_IN + "<line>",
     "compiled into Debian's apache2, so no .so exists; its directives work without the line"),
    ("modules/mod_X.so, not in the module folder", NOT_IN_BUILD + "<line>",
     "Debian does not build it (mod_systemd); counted, and never one of the proxy modules"),
)
# Folders the mapped tree must have (kept by an empty .keep file), with the folder each stands for.
DIRS = {"logs": "/var/log/httpd", "run": "/run/httpd", "www/html": "/var/www/html",
        "www/cgi-bin": "/var/www/cgi-bin", "share/noindex": "/usr/share/httpd/noindex"}

_LOADMODULE = re.compile(r"^(\s*)LoadModule\s+(\S+)\s+(\S+)\s*$")


def installed_packages(host, inventory, options) -> tuple[str, ...]:
    """The packages the proxy role installs on a RedHat-family host."""
    names = []
    for r in proxy.resources(host, REDHAT, inventory, options):
        if isinstance(r, Packages):
            names += [n for n in r.names if n not in names]
    return tuple(names)


def stock_files(packages) -> dict[str, str]:
    """Absolute path -> fixture name of every stock file those packages install."""
    return {path: name for p in packages for path, name in STOCK_FILES.get(p, {}).items()}


def redhat_tree(host, inventory, options, base_files: dict[str, bytes]) -> dict[str, bytes]:
    """The files under /etc/httpd after a deploy: base_files overlaid with every File the proxy role
    writes there (an Absent there removes one). The module drop-in (ApacheModuleDropin) is left out:
    it needs facts, and on a fresh httpd it writes nothing, since the stock 00-proxy.conf loads all
    four proxy modules (tests/fixtures/centos7/conf.modules.d/00-proxy.conf)."""
    if f"{CONF_DIR}/conf/httpd.conf" not in base_files:
        raise ValueError(f"base_files has no {CONF_DIR}/conf/httpd.conf")
    tree = dict(base_files)
    for r in proxy.resources(host, REDHAT, inventory, options):
        path = getattr(r, "path", None)
        if path is None or not path.startswith(CONF_DIR + "/"):
            continue
        if isinstance(r, File):
            tree[path] = r.content
        elif isinstance(r, Absent):
            tree.pop(path, None)
        elif isinstance(r, Link):
            raise ValueError(f"{path}: links are not modelled in the tree")
    return dict(sorted(tree.items()))


def _map_paths(text: str, root: str) -> str:
    for old, new, _ in PATH_MAP:
        text = re.sub(rf"(?<![\w./-]){re.escape(old)}(?=[/\"'\s)]|$)", new.format(root=root), text,
                      flags=re.M)
    return text


def _map_line(line: str, available: set[str], builtin: set[str]) -> str:
    m = _LOADMODULE.match(line)
    if m:
        indent, _, so = m.groups()
        name = posixpath.basename(so)
        if posixpath.splitext(name)[0] in builtin:
            return indent + BUILT_IN + line.lstrip()
        if name not in available:
            return indent + NOT_IN_BUILD + line.lstrip()
        if not so.startswith("/"):
            return line.replace(so, f"{DEBIAN_MODULES}/{name}", 1)
        return line
    for directive, old, new, _ in LINE_MAP:
        m = re.match(rf"^(\s*){directive}\s+{re.escape(old)}\s*$", line)
        if m:
            return f"{m.group(1)}{directive} {new}"
    return line


def map_for_debian_binary(tree: dict[str, bytes], root: str, available_modules: set[str],
                          builtin_modules: set[str] = frozenset()) -> dict[str, bytes]:
    """The tree rewritten for Debian's apache2, keyed by paths under root (see PATH_MAP, LINE_MAP,
    MODULE_MAP). available_modules: file names in /usr/lib/apache2/modules; builtin_modules:
    `apache2 -l` names (mod_unixd.c or mod_unixd)."""
    root = root.rstrip("/")
    builtin = {posixpath.splitext(n)[0] for n in builtin_modules}
    out = {}
    for path, content in tree.items():
        text = _map_paths(content.decode(), root)
        lines = [_map_line(line, available_modules, builtin) for line in text.split("\n")]
        out[_map_paths(path, root)] = "\n".join(lines).encode()
    for d in DIRS:
        out.setdefault(f"{root}/{d}/.keep", b"")
    if f"{root}/conf/httpd.conf" not in out:
        raise ValueError(f"no {root}/conf/httpd.conf after mapping")
    return out


def commented(tree: dict[str, bytes], marker: str = NOT_IN_BUILD) -> list[str]:
    """Module ids of the LoadModule lines map_for_debian_binary commented out with marker."""
    found = []
    for content in tree.values():
        for line in content.decode().splitlines():
            rest = line.strip()
            if rest.startswith(marker):
                m = _LOADMODULE.match(rest[len(marker):])
                if m:
                    found.append(m.group(2))
    return found
