"""Backends: each app is a small Flask app in its own venv, run by gunicorn from a systemd unit,
as its own system user, bound to the host's private address (never a wildcard). On RedHat,
firewalld opens the app's port to the proxies' addresses only; apps on 127.0.0.1 (the proxy on the
same host, as in the tutorial) need no opening."""
from __future__ import annotations

import ipaddress
import shlex

from .. import syntax
from ..apply import Handler
from .. import audit
from ..platforms import Platform
from ..render import FILES, render
from ..resources import Directory, File, FirewalldPortFrom, Packages, Service, SystemUser, Venv
from ..sites import model as sites
from ..wheels import wheelhouse
from . import proxy as proxy_role

APPS_ROOT = "/opt/provision/apps"
GROUP = "backends"


def unit_name(app: dict) -> str:
    return f"provision-app-{app['name']}.service"


def app_user(app: dict) -> str:
    return f"app-{app['name']}"


def app_home(app: dict) -> str:
    return f"{APPS_ROOT}/{app['name']}"


def restart_handler(app: dict) -> str:
    return f"restart-{unit_name(app)}"


class BackendConfigError(Exception):
    pass


def specific_address(host, role: str) -> str:
    """The host's private address (private_address, else an ansible_host that is an IP address):
    what a backend binds and what its firewall lets in from a proxy. A wildcard or a host name is
    refused: the apps must listen on one known address, reachable by the proxies."""
    value = host.private_address
    address = syntax.ip_address(value)
    if address is None:
        raise BackendConfigError(f"host {host.name!r}: field 'private_address' is required ({role}): "
                                 f"'ansible_host' {value!r} is not an IP address (without a zone ID)")
    if address.is_unspecified or address.is_multicast:
        raise BackendConfigError(f"host {host.name!r}: field 'private_address' must be one specific address "
                                 f"({role}), not {value!r}")
    return str(address)


def on_loopback(host) -> bool:
    """Apps bound to loopback: only a proxy on the same host reaches them."""
    try:
        return ipaddress.ip_address(host.private_address).is_loopback
    except ValueError:      # a host name: ansible_host given as a name
        return False


def _wheels(facts):
    return wheelhouse(facts.python, facts.arch)


def trusted_proxies(inventory) -> list[str]:
    """The addresses the proxies connect from (and loopback, for a host that is both)."""
    found = ["127.0.0.1"]
    for h in inventory.group("proxies"):
        found += [a for a in (h.private_address,) if a not in found]
    return found


def websocket_apps(host, inventory, options) -> set[str]:
    """This host's apps that a WebSocket route of some proxy points at."""
    return {app for p in inventory.group(proxy_role.GROUP)
            for h, app in proxy_role.model(p, inventory, options).websocket_members if h == host.name}


def gunicorn_conf(websocket: bool) -> str:
    """gunicorn's sync worker (one request per process at a time, a connection closed after each
    answer) for plain HTTP; the threaded worker only for an app behind a WebSocket route, where an
    open WebSocket holds its thread for as long as it lasts (a sync worker would be held whole)."""
    return (FILES / ("gunicorn-websocket.conf.py" if websocket else "gunicorn.conf.py")).read_text()


def resources(host, platform: Platform, inventory, options) -> list:
    address = specific_address(host, "the apps bind it")
    proxies = tuple(dict.fromkeys(specific_address(p, "the backends' firewalld lets it in")
                                  for p in inventory.group("proxies")))
    steps = [
        Packages(platform, platform.python_packages),
        Directory("/opt/provision"),
        Directory(APPS_ROOT),
    ]
    trusted = trusted_proxies(inventory)
    threaded = websocket_apps(host, inventory, options)
    for app in host.apps:
        home, user, restart = app_home(app), app_user(app), (restart_handler(app),)
        bind = syntax.host_port(address, app["port"])
        steps += [
            Directory(home),
            SystemUser(user, home, platform.nologin_shell),
            File(f"{home}/app.py", render("app.py.j2", name=app["name"], message=app["message"],
                                          own_url=f"http://{bind}", trusted=trusted,
                                          member=sites.member_name(host.name, app["name"], sites.names_of(host))),
                 notify=restart),
            File(f"{home}/gunicorn.conf.py", gunicorn_conf(app["name"] in threaded), notify=restart),
            Venv(f"{home}/venv", getattr(options, "wheels", None) or _wheels, notify=restart),
            File(f"/etc/systemd/system/{unit_name(app)}",
                 render("app.service.j2", name=app["name"], user=user, home=home, bind=bind, workers=2,
                        trusted=",".join(trusted)),
                 notify=restart, after="systemctl daemon-reload", kind_label="unit"),
            Service(unit_name(app), restart_handler=restart[0]),
        ]
        if platform.family == "redhat" and host.vars.get("firewalld_open_http", True) and not on_loopback(host):
            steps.append(FirewalldPortFrom(f"{app['port']}/tcp", proxies))     # the proxies, no one else
    return steps + audit.resources()


def handlers(host, platform: Platform) -> dict[str, Handler]:
    return {restart_handler(a): Handler(restart_handler(a), f"restart {unit_name(a)}",
                                        f"systemctl restart {shlex.quote(unit_name(a))}") for a in host.apps}


def validators_for(platform: Platform) -> dict[str, str]:
    return {}
