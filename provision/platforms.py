"""OS families as data: package names, paths and commands. No logic lives here."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    """One OS family (or release) as data."""
    family: str
    # packages
    package_query: str          # prints "name<TAB>state<TAB>version" per package; state "installed" or other
    package_install: str        # {names} is replaced by the quoted package list
    python_packages: tuple[str, ...]
    apache_packages: tuple[str, ...]
    tls_packages: tuple[str, ...]
    nologin_shell: str
    # Apache
    apache_service: str
    apache_ctl: str             # configtest and -M
    apache_conf_dir: str
    vhost_path: str             # the :80/:443 vhosts
    vhost_enable_link: str | None   # Debian: sites-enabled symlink to vhost_path
    routes_path: str            # shared proxy directives, included by every vhost
    disabled_defaults: tuple[tuple[str, str], ...]  # (path, how): "absent" or "blank"
    module_enable: str          # how to enable missing modules: "a2enmod" or "dropin"
    module_dropin: str | None
    modules_listing: str        # fact command that lists enabled modules
    tls_dir: str                # the proxy's certificate and key (directory 0700, key 0600)
    tls_conf: str | None        # the global SSL config file we manage (RedHat: mod_ssl's ssl.conf)
    tls_chain_directive: bool   # httpd < 2.4.8 reads the chain from SSLCertificateChainFile only
    log_dir: str                # per-site logs, named *.log so that the package's logrotate covers them
    apache_user: str            # the user Apache's children (and mod_md's MDMessageCmd) run as
    # tls: acme through mod_md: None where the release's httpd has no mod_md (before 2.4.30), else the
    # packages that bring it (none: it ships with Apache)
    md_packages: tuple[str, ...] | None
    md_store: str               # mod_md's default MDStoreDir ("md" under the ServerRoot)
    md_contact: str             # the directive that gives the CA our contact address
    error_log: str              # the server's error log (mod_md writes the CA's answers there)
    builtin_modules: tuple[str, ...] = ()   # compiled into the binary: a2enmod does not know them


DEBIAN = Platform(
    family="debian",
    package_query="dpkg-query -W -f '${Package}\\t${db:Status-Status}\\t${Version}\\n'",
    # A stalled mirror or proxy must not hang a run: bounded waits, then retries. No translations.
    package_install="apt-get update -q -o Acquire::http::Timeout=20 -o Acquire::Retries=3 "
                    "-o Acquire::Languages=none && "
                    "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
                    "-o Acquire::http::Timeout=20 -o Acquire::Retries=3 -o Dpkg::Options::=--force-confold {names}",
    python_packages=("python3", "curl"),     # venvs are made --without-pip: no python3-venv needed
    apache_packages=("apache2", "curl"),
    tls_packages=(),            # mod_ssl ships inside apache2 on Debian
    nologin_shell="/usr/sbin/nologin",
    apache_service="apache2",
    apache_ctl="apache2ctl",
    apache_conf_dir="/etc/apache2",
    vhost_path="/etc/apache2/sites-available/provision-proxy.conf",
    vhost_enable_link="/etc/apache2/sites-enabled/provision-proxy.conf",
    routes_path="/etc/apache2/provision/proxy-routes.inc",
    disabled_defaults=(("/etc/apache2/sites-enabled/000-default.conf", "absent"),),
    module_enable="a2enmod",
    module_dropin=None,
    modules_listing="ls -1 /etc/apache2/mods-enabled/",
    tls_dir="/etc/apache2/provision/tls",
    # Debian's mods-available/ssl.conf holds the global SSL settings and ports.conf has
    # "<IfModule ssl_module> Listen 443": a2enmod ssl is all it takes.
    tls_conf=None,
    tls_chain_directive=False,
    # apache2's /etc/logrotate.d/apache2 rotates /var/log/apache2/*.log.
    log_dir="/var/log/apache2",
    apache_user="www-data",
    # Debian builds mod_md into the apache2 package (mods-available/md.load) from 2.4.30 on, and every
    # release we support ships 2.4.41 or later (APACHE_VERSION_BY_RELEASE); mod_watchdog, which it
    # needs, is compiled in (apache2 -l on the lab's Debian 12).
    md_packages=(),
    md_store="/etc/apache2/md",     # seen on the lab's Debian 12 (apache2 2.4.71)
    # MDContactEmail: httpd 2.4.42 and later (mod_md documentation); Debian 11 ships 2.4.62 or later.
    md_contact="MDContactEmail",
    error_log="/var/log/apache2/error.log",     # apache2.conf: ErrorLog ${APACHE_LOG_DIR}/error.log
    # `apache2ctl -M` says "watchdog_module (static)" on Debian 11, 12 and 13 (tests/fixtures/debian1*/),
    # and there is no mods-available/watchdog.load.
    builtin_modules=("watchdog",),
)

# CentOS 7 / RHEL family. Paths from the httpd-2.4.6-45.el7.centos package sources
# (shared fixtures, centos7/httpd.conf: "IncludeOptional conf.d/*.conf" and
# "Include conf.modules.d/*.conf"); rpm-based package query.
REDHAT = Platform(
    family="redhat",
    package_query="rpm -q --qf '%{NAME}\\tinstalled\\t%{VERSION}-%{RELEASE}\\n'",
    package_install="yum install -y -q {names}",
    python_packages=("python3", "curl"),
    apache_packages=("httpd", "curl"),
    tls_packages=("mod_ssl",),
    nologin_shell="/sbin/nologin",
    apache_service="httpd",
    apache_ctl="apachectl",
    apache_conf_dir="/etc/httpd",
    vhost_path="/etc/httpd/conf.d/provision-proxy.conf",
    vhost_enable_link=None,
    routes_path="/etc/httpd/provision/proxy-routes.inc",
    # welcome.conf is %config(noreplace) in the httpd package: blanking it survives updates,
    # deleting it would be undone by the next yum update.
    disabled_defaults=(("/etc/httpd/conf.d/welcome.conf", "blank"),),
    module_enable="dropin",
    module_dropin="/etc/httpd/conf.modules.d/10-provision-proxy.conf",
    modules_listing="cat /etc/httpd/conf.modules.d/*.conf",
    # Under /etc/httpd, so SELinux labels them httpd_config_t (readable by httpd) by inheritance.
    tls_dir="/etc/httpd/provision/tls",
    # mod_ssl's conf.d/ssl.conf (CentOS 7 httpd SRPM, SOURCES/ssl.conf) holds "Listen 443 https",
    # the global SSL settings and a _default_:443 vhost with /etc/pki/tls localhost certs: we own it.
    tls_conf="/etc/httpd/conf.d/ssl.conf",
    # httpd 2.4.6: SSLCertificateFile reads one certificate; chains from 2.4.8 (mod_ssl docs).
    tls_chain_directive=True,
    # httpd's /etc/logrotate.d/httpd rotates /var/log/httpd/*log (CentOS 7 httpd SRPM,
    # SOURCES/httpd.logrotate).
    log_dir="/var/log/httpd",
    apache_user="apache",           # CentOS 7 httpd.conf: "User apache" (shared fixtures)
    # CentOS 7's httpd 2.4.6 has no mod_md (it needs 2.4.30: mod_md documentation, "Compatibility"):
    # tls: acme takes the control route there. Releases with mod_md: RELEASE_DIFFERENCES.
    md_packages=None,
    # mod_md's contrib/selinux/mod_md.te: "mod_md (by default) maintains its data in /etc/httpd/md".
    md_store="/etc/httpd/md",
    md_contact="MDContactEmail",
    error_log="/var/log/httpd/error_log",       # CentOS 7 httpd.conf: ErrorLog "logs/error_log"
)

PLATFORMS = {"debian": DEBIAN, "redhat": REDHAT}

# /etc/os-release ID (and ID_LIKE) -> family, with the releases we support.
FAMILY_BY_ID = {
    "debian": "debian", "ubuntu": "debian",
    "centos": "redhat", "rhel": "redhat", "rocky": "redhat", "almalinux": "redhat",
}
SUPPORTED_RELEASES = {
    "debian": ("11", "12", "13"),
    "ubuntu": ("20.04", "22.04", "24.04"),
    "centos": ("7",),
    "rhel": ("7", "8", "9"),
    "rocky": ("8", "9"),
    "almalinux": ("8", "9"),
}

# Where one release of a family differs: (os-release ID, major VERSION_ID) -> the Platform fields
# it has instead of its family's.
RELEASE_DIFFERENCES = {
    # Debian 11 ships distutils apart from python3, in python3-distutils (bullseye's python3-pip
    # depends on it), and pip on Python < 3.10 imports distutils for its install paths: without it
    # the venv's `pip install` stops with "No module named 'distutils.cmd'" (seen on the mixed lab).
    ("debian", "11"): {"python_packages": ("python3", "python3-distutils", "curl")},
    # RHEL 8 and 9 and their rebuilds package mod_md apart from httpd (2.4.37 and 2.4.51+), as Fedora
    # does (mod_md's contrib/selinux/README). httpd 2.4.37 predates MDContactEmail (2.4.42, mod_md
    # documentation): mod_md then takes the address from ServerAdmin ("If MDContactEmail is not
    # present, mod_md will use the ServerAdmin directive").
    **{(os_id, "8"): {"md_packages": ("mod_md",), "md_contact": "ServerAdmin"}
       for os_id in ("rhel", "rocky", "almalinux")},
    **{(os_id, "9"): {"md_packages": ("mod_md",)} for os_id in ("rhel", "rocky", "almalinux")},
}

# Apache proxy modules: a2enmod name -> (module id, shared object) as in
# CentOS 7's conf.modules.d/00-proxy.conf (shared fixtures).
PROXY_MODULES = {
    "proxy": ("proxy_module", "modules/mod_proxy.so"),
    "proxy_http": ("proxy_http_module", "modules/mod_proxy_http.so"),
    "proxy_balancer": ("proxy_balancer_module", "modules/mod_proxy_balancer.so"),
    "lbmethod_byrequests": ("lbmethod_byrequests_module", "modules/mod_lbmethod_byrequests.so"),
}
# Every vhost sets X-Forwarded-Proto, and sticky pools set the ROUTEID cookie: mod_headers.
# CentOS 7 loads it in 00-base.conf (shared fixtures).
FORWARDED_MODULES = {
    "headers": ("headers_module", "modules/mod_headers.so"),
}
# mod_proxy_balancer needs a shared-memory provider. Debian's a2enmod pulls slotmem_shm in;
# on CentOS 7 it is loaded by 00-base.conf (shared fixtures).
SUPPORT_MODULES = {
    "slotmem_shm": ("slotmem_shm_module", "modules/mod_slotmem_shm.so"),
}
# TLS: mod_ssl and its session cache, mod_headers (X-Forwarded-Proto, HSTS), mod_rewrite for
# tls_redirect. On CentOS 7, ssl_module is loaded by mod_ssl's conf.modules.d/00-ssl.conf and the
# others by 00-base.conf (shared fixtures).
TLS_MODULES = {
    "ssl": ("ssl_module", "modules/mod_ssl.so"),
    "socache_shmcb": ("socache_shmcb_module", "modules/mod_socache_shmcb.so"),
    "headers": ("headers_module", "modules/mod_headers.so"),
}
# WebSocket routes on httpd before 2.4.47: ws:// members through mod_proxy_wstunnel (httpd 2.4.5+,
# mod_proxy_wstunnel documentation). CentOS 7 and Rocky 9 load it in 00-proxy.conf (shared fixtures).
WEBSOCKET_MODULES = {
    "proxy_wstunnel": ("proxy_wstunnel_module", "modules/mod_proxy_wstunnel.so"),
}
# From httpd 2.4.47, mod_proxy_http upgrades the connection itself when the worker says
# upgrade=websocket (httpd CHANGES 2.4.47, "mod_proxy_http: handle upgrade/tunneling of protocols";
# mod_proxy documentation, "Protocol Upgrade"); mod_proxy_wstunnel is deprecated there.
UPGRADE_PARAM_SINCE = (2, 4, 47)
# The Apache version each release ships: it picks the WebSocket directives and the health checks,
# the same on every deploy (installed or not yet). Only which side of 2.4.21, 2.4.47 and 2.4.55
# matters. A release not listed gets the form every 2.4 understands (ws:// members, passive health).
# Sources: CentOS/RHEL 7 httpd-2.4.6 (shared fixtures, centos7: httpd-2.4.6-45.el7.centos);
# RHEL 8 and its rebuilds httpd 2.4.37, RHEL 9 2.4.51 and later (Red Hat's "Deploying web
# servers" guides for 8 and 9); Debian 11 2.4.67-1~deb11u3, 12 2.4.71-1~deb12u1, 13
# 2.4.71-1~deb13u1 (tests/fixtures/debian1*/facts-proxy.txt); Ubuntu 20.04 2.4.41, 22.04 2.4.52,
# 24.04 2.4.58 (packages.ubuntu.com, apache2 in focal, jammy, noble).
APACHE_VERSION_BY_RELEASE = {
    ("centos", "7"): (2, 4, 6), ("rhel", "7"): (2, 4, 6),
    **{(os_id, "8"): (2, 4, 37) for os_id in ("rhel", "rocky", "almalinux")},
    **{(os_id, "9"): (2, 4, 51) for os_id in ("rhel", "rocky", "almalinux")},
    ("debian", "11"): (2, 4, 67), ("debian", "12"): (2, 4, 71), ("debian", "13"): (2, 4, 71),
    ("ubuntu", "20"): (2, 4, 41), ("ubuntu", "22"): (2, 4, 52), ("ubuntu", "24"): (2, 4, 58),
}
# The python3 each release ships, for a first deploy to a host that has none yet (a minimal
# image: the backends role installs python3 in the same run, so facts gathered before it cannot
# say which wheels to upload). Once python3 is installed, the host's own version decides.
# Sources: Debian 11, 12, 13 `python3 -V` (tests/fixtures/debian1{1,2,3}/python3-V.txt);
# CentOS 7 python3 3.6.8 (LAB-FACTS). A release not listed needs python3 installed first.
PYTHON_VERSION_BY_RELEASE = {
    ("centos", "7"): (3, 6, 8), ("rhel", "7"): (3, 6, 8),
    ("debian", "11"): (3, 9, 2), ("debian", "12"): (3, 11, 2), ("debian", "13"): (3, 13, 5),
}
# Active health checks: mod_proxy_hcheck, which needs mod_watchdog's thread (mod_proxy_hcheck
# documentation: "Available in Apache 2.4.21 and later", "requires the service of mod_watchdog").
# RHEL 8 and 9 load both from the httpd package: watchdog_module in 00-base.conf, proxy_hcheck_module
# in 00-proxy.conf (tests/fixtures/rocky9/conf.modules.d/). Debian builds mod_watchdog in (above).
HCHECK_MODULES = {
    "watchdog": ("watchdog_module", "modules/mod_watchdog.so"),
    "proxy_hcheck": ("proxy_hcheck_module", "modules/mod_proxy_hcheck.so"),
}
HCHECK_SINCE = (2, 4, 21)
# httpd CHANGES 2.4.55: "mod_proxy_hcheck: Honor worker timeout settings" (before, a check waits for
# ProxyTimeout, else the server's Timeout) and "Re-enable workers in standard ERROR state" (PR 66302:
# a passing check also brings back a member that passive health took out; before, only `retry` did).
HCHECK_REENABLES_SINCE = (2, 4, 55)
REDIRECT_MODULES = {
    "rewrite": ("rewrite_module", "modules/mod_rewrite.so"),
}
# tls: acme through mod_md: Debian enables it with a2enmod (RedHat's mod_md package loads it from its
# own conf.modules.d file). mod_md "Available in version 2.4.30 and later" (mod_md documentation).
MD_MODULES = {
    "md": ("md_module", "modules/mod_md.so"),
}
MOD_MD_SINCE = (2, 4, 30)

# Backend wheels by the target's python3 (major, minor); a Python not listed gets the _CURRENT pins.
# pip download evaluates environment markers against the control machine's Python (3.11), so
# a dependency that only an older target needs is pinned here by hand (found in the wheels' METADATA).
# The apps' WebSocket endpoint (/ws): flask-sock 0.7.0 (Requires-Python >=3.6, Flask >=2) on
# simple-websocket 1.1.0 (>=3.6) on wsproto and h11, pinned per Python from their wheels' METADATA:
# wsproto 1.3 needs >=3.10, 1.2.0 >=3.7, 1.0.0 >=3.6.1 (so the download names the target's full
# version); h11 0.16.0 needs >=3.8, 0.13.0 is the last for 3.6 (it needs dataclasses and
# typing-extensions there, pinned for 3.6 already).
APP_PINS = {
    # CentOS 7 ships python3 3.6.8 (7.9.2009's python3 package): Flask/Werkzeug 2.0.x are the last to support 3.6,
    # gunicorn 21.2 the last for 3.6 (CVE-2024-1135: we bind it to the private address only).
    # Werkzeug 2.0.3 needs "dataclasses; python_version < 3.7", click 8.0.4 needs
    # "importlib-metadata; python_version < 3.8", which pulls zipp and typing-extensions;
    # these are their last releases for 3.6.
    (3, 6): ("Flask==2.0.3", "Werkzeug==2.0.3", "gunicorn==21.2.0", "dataclasses==0.8",
             "importlib-metadata==4.8.3", "zipp==3.6.0", "typing-extensions==4.1.1",
             "flask-sock==0.7.0", "simple-websocket==1.1.0", "wsproto==1.0.0", "h11==0.13.0"),
    # Debian 11 ships python3 3.9.2. Flask 3.1 and Werkzeug 3.1 still support 3.9 (Requires-Python
    # >=3.9); gunicorn 23.0 is the last for 3.9 (24.0 needs >=3.10) and has the fixes for
    # CVE-2024-1135 and CVE-2024-6827; click 8.1.8 is the last for 3.9 (8.2 needs >=3.10).
    # Flask 3.1.3 needs "importlib-metadata>=3.6.0; python_version < '3.10'": 8.7.1 and its
    # zipp>=3.20 (3.23.1) are their last releases for 3.9.
    (3, 9): ("Flask==3.1.3", "Werkzeug==3.1.9", "gunicorn==23.0.0", "click==8.1.8",
             "importlib-metadata==8.7.1", "zipp==3.23.1",
             "flask-sock==0.7.0", "simple-websocket==1.1.0", "wsproto==1.2.0", "h11==0.16.0"),
}
# Python 3.10 and newer: Debian 12's 3.11 and Debian 13's 3.13 (cp313 MarkupSafe wheels exist
# from MarkupSafe 3.0). gunicorn 24+ needs 3.10, so 3.9 and older have their own pins above.
APP_PINS_CURRENT = ("Flask==3.1.3", "Werkzeug==3.1.9", "gunicorn==27.0.1",
                    "flask-sock==0.7.0", "simple-websocket==1.1.0", "wsproto==1.3.2", "h11==0.16.0")
# The pip that installs those wheels, run straight from its wheel (venvs are made without pip,
# which saves ensurepip's seconds per app). pip 21.3.1 is the last release for Python 3.6,
# pip 26.0.1 the last for 3.9 (26.1 needs >=3.10).
INSTALLER_PINS = {(3, 6): "pip==21.3.1", (3, 9): "pip==26.0.1"}
INSTALLER_PIN_CURRENT = "pip==26.3"
