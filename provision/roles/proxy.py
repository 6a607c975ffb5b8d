"""The proxy: Apache httpd with mod_proxy and a vhost proxying to one backend app (single) or to
a balancer:// cluster of every backend app. Changes are configtested, then gracefully reloaded."""
from __future__ import annotations

import posixpath

from ..apply import Handler
from ..platforms import PROXY_MODULES, Platform
from ..render import FILES, render
from ..resources import (Absent, ApacheModuleDropin, ApacheModules, Directory, File, FirewalldService,
                         Link, Packages, SELinuxBoolean, Service)

GROUP = "proxies"
RELOAD = "reload-apache"
VALIDATE = "apache"
VAULT = "http://vault.centos.org"
CENTOS7_REPO = "/etc/yum.repos.d/CentOS-Base.repo"
DEFAULTS = {"proxy_mode": "balancer", "lbmethod": "byrequests", "balancer_retry": 5,
            "balancer_timeout": 30, "balancer_connectiontimeout": 2}


class ProxyConfigError(Exception):
    pass


def setting(host, options, key):
    if key == "proxy_mode" and getattr(options, "mode", None):
        return options.mode
    return host.vars.get(key, DEFAULTS.get(key))


def members(inventory) -> list[dict]:
    """Every app of every backend host, in inventory order."""
    return [{"address": b.private_address, "port": a["port"], "route": f"{b.name}-{a['name']}"}
            for b in inventory.group("backends") for a in b.apps]


def modules(host, options) -> dict:
    """The proxy modules, plus the lbmethod's own module when it is not byrequests."""
    lb = setting(host, options, "lbmethod")
    extra = {f"lbmethod_{lb}": (f"lbmethod_{lb}_module", f"modules/mod_lbmethod_{lb}.so")}
    return {**PROXY_MODULES, **extra}


def routes(host, platform: Platform, inventory, options) -> str:
    found = members(inventory)
    if not found:
        raise ProxyConfigError(f"{inventory.path}: group 'backends' has no apps to proxy to")
    return render("proxy-routes.inc.j2", mode=setting(host, options, "proxy_mode"), members=found,
                  lbmethod=setting(host, options, "lbmethod"), retry=setting(host, options, "balancer_retry"),
                  timeout=setting(host, options, "balancer_timeout"),
                  connectiontimeout=setting(host, options, "balancer_connectiontimeout"),
                  extra=host.vars.get("proxy_extra_directives", []))


def vhost(host, platform: Platform, options) -> str:
    return render("proxy-vhost.conf.j2", mode=setting(host, options, "proxy_mode"),
                  server_name=host.vars.get("server_name", host.name), routes_path=platform.routes_path)


def _centos7_only(facts):
    # Only CentOS 7 is EOL with dead mirrors (LAB-FACTS: "CentOS 7 facts").
    if facts.os.get("ID") == "centos" and facts.os.get("VERSION_ID", "").split(".")[0] == "7":
        return None
    return "not CentOS 7"


def resources(host, platform: Platform, inventory, options) -> list:
    reload_, check = (RELOAD,), VALIDATE
    steps = []
    if platform.family == "redhat" and host.vars.get("vault_repos", True):
        steps.append(File(CENTOS7_REPO, render("centos7-vault.repo.j2", vault=VAULT,
                                                repos=["base", "updates", "extras"]),
                          after="yum clean all -q", when=_centos7_only, kind_label="yum repo"))
    steps.append(Packages(platform, platform.apache_packages))
    if platform.module_enable == "a2enmod":
        steps.append(ApacheModules(tuple(modules(host, options)), notify=reload_))
    else:
        steps.append(ApacheModuleDropin(platform.module_dropin, modules(host, options), platform.apache_packages[0],
                                        notify=reload_, validate=check))
    if platform.family == "redhat":
        if host.vars.get("selinux_network_connect", True):
            steps.append(SELinuxBoolean("httpd_can_network_connect", True))
        if host.vars.get("firewalld_open_http", True):
            steps.append(FirewalldService("http"))
    steps += [
        Directory(posixpath.dirname(platform.routes_path)),
        File(platform.routes_path, routes(host, platform, inventory, options), notify=reload_, validate=check),
        File(platform.vhost_path, vhost(host, platform, options), notify=reload_, validate=check),
    ]
    if platform.vhost_enable_link:
        steps.append(Link(platform.vhost_enable_link, f"../sites-available/{posixpath.basename(platform.vhost_path)}",
                          notify=reload_, validate=check))
    for path, how in platform.disabled_defaults:
        if how == "absent":
            steps.append(Absent(path, notify=reload_, validate=check, installed_by=platform.apache_packages[0]))
        else:
            steps.append(File(path, (FILES / "welcome-disabled.conf").read_text(), notify=reload_,
                              validate=check))
    steps.append(Service(platform.apache_service))
    return steps


def handlers(host, platform: Platform) -> dict[str, Handler]:
    return {RELOAD: Handler(RELOAD, f"reload {platform.apache_service}",
                            f"{platform.apache_ctl} configtest\nsystemctl reload {platform.apache_service}")}


def validators_for(platform: Platform) -> dict[str, str]:
    return {VALIDATE: f"{platform.apache_ctl} configtest"}
