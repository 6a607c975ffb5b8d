"""Backends: each app runs under gunicorn from a systemd unit, as its own system user, bound to the
host's private address (never a wildcard). The demo's app (`message:`) is a small Flask app in
its own venv; an app of the user's own (`project:` or `package:`) runs from releases (releases.py).
On RedHat, firewalld opens the app's port to the proxies' addresses only; apps on 127.0.0.1 (the
proxy on the same host, as in the tutorial) need no opening."""
from __future__ import annotations

import ipaddress
import shlex

from .. import syntax
from ..apply import STATE_DIR, Handler
from .. import audit
from ..facts import python_version
from ..inventory.apps import is_code_app, setting
from ..platforms import Platform
from ..releases import Environment, Release
from ..render import FILES, render
from ..resources import Directory, File, FirewalldPortFrom, Packages, Service, SystemUser, Venv
from ..sites import model as sites
from ..wheels import wheelhouse
from . import proxy as proxy_role

APPS_ROOT = "/opt/provision/apps"
STATE_ROOT = STATE_DIR
DATA_ROOT = f"{STATE_ROOT}/apps"        # each app's data folder (data_dir: true) survives its releases
GROUP = "backends"


def unit_name(app: dict) -> str:
    return f"provision-app-{app['name']}.service"


def app_user(app: dict) -> str:
    return f"app-{app['name']}"


def app_home(app: dict) -> str:
    return f"{APPS_ROOT}/{app['name']}"


def data_dir(app: dict) -> str | None:
    return f"{DATA_ROOT}/{app['name']}" if setting(app, "data_dir") else None


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
    return wheelhouse(python_version(facts), facts.arch)


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


def prepare(host, platform: Platform, inventory, options) -> list:
    """What gets a host ready without touching a running app: packages, folders, users, the demo
    apps' files and venvs, an app of your own's folders and data files, the audit trail's folder
    and logrotate file."""
    steps = [
        Packages(platform, platform.python_packages),
        Directory("/opt/provision"),
        Directory(APPS_ROOT),
    ]
    address = specific_address(host, "the apps bind it")
    trusted = trusted_proxies(inventory)
    threaded = websocket_apps(host, inventory, options)
    if any(data_dir(a) for a in host.apps if is_code_app(a)):
        # An older apply made STATE_ROOT root-only: the apps' users must pass through it. A host that
        # has none yet gets it from its first apply (apply.launcher), before any step runs.
        steps += [Directory(STATE_ROOT, when=lambda facts: "made 755 by the apply itself"
                            if facts.file(STATE_ROOT).kind == "absent" else None), Directory(DATA_ROOT)]
    for app in host.apps:
        home, user, restart = app_home(app), app_user(app), (restart_handler(app),)
        if is_code_app(app):
            steps += code_app_prepare(platform, app)
            continue
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
        ]
    return steps + audit.resources()


def switch(host, platform: Platform, inventory, options) -> list:
    """What puts the apps in service: each app's unit, an app of your own's new release (switched
    to once its checks pass), running, and (RedHat) its port open to the proxies. The apps'
    restarts (handlers) run after it."""
    address = specific_address(host, "the apps bind it")
    proxies = tuple(dict.fromkeys(specific_address(p, "the backends' firewalld lets it in")
                                  for p in inventory.group("proxies")))
    trusted = trusted_proxies(inventory)
    threaded = websocket_apps(host, inventory, options)
    steps = []
    for app in host.apps:
        home, user, restart = app_home(app), app_user(app), restart_handler(app)
        bind = syntax.host_port(address, app["port"])
        if is_code_app(app):
            steps += code_app_switch(host, app, bind, trusted, app["name"] in threaded, options)
        else:
            steps += [
                File(f"/etc/systemd/system/{unit_name(app)}",
                     render("app.service.j2", name=app["name"], user=user, home=home, bind=bind, workers=2,
                            trusted=",".join(trusted)),
                     notify=(restart,), after="systemctl daemon-reload", kind_label="unit"),
                Service(unit_name(app), restart_handler=restart),
            ]
        if platform.family == "redhat" and host.vars.get("firewalld_open_http", True) and not on_loopback(host):
            steps.append(FirewalldPortFrom(f"{app['port']}/tcp", proxies))     # the proxies, no one else
    return steps


def resources(host, platform: Platform, inventory, options) -> list:
    return prepare(host, platform, inventory, options) + switch(host, platform, inventory, options)


def code_app_prepare(platform: Platform, app: dict) -> list:
    """An app of the user's own, before its release: its user, folders, data folder and files."""
    home, user, restart = app_home(app), app_user(app), (restart_handler(app),)
    data = data_dir(app)
    steps = [Directory(home), SystemUser(user, home, platform.nologin_shell), Directory(f"{home}/releases")]
    if data:
        steps.append(Directory(data, mode="750", owner=user, group=user))
        for f in app.get("files") or []:
            secret = bool(f.get("secret"))
            steps.append(File(f"{data}/{f['path']}", f["content"], mode="640" if secret else "644",
                              group=user if secret else "root", secret=secret, notify=restart,
                              kind_label="secret file" if secret else "file"))
    return steps


def code_app_switch(host, app: dict, bind: str, trusted: list[str], websocket: bool, options) -> list:
    """An app of the user's own: its unit, and its current release (built, checked, switched to)."""
    home, user, restart = app_home(app), app_user(app), restart_handler(app)
    data = data_dir(app)
    origin = host.origins.get("apps")
    build = getattr(options, "app_wheels", None) or (lambda facts: _app_wheels(app, origin, facts))
    return [
        File(f"/etc/systemd/system/{unit_name(app)}",
             render("app-release.service.j2", name=app["name"], user=user, current=f"{home}/current", bind=bind,
                    trusted=",".join(trusted), wsgi=app["wsgi"]),
             notify=(restart,), after="systemctl daemon-reload", kind_label="unit"),
        Release(app["name"], home, user, unit_name(app), app["wsgi"], setting(app, "health"), bind,
                setting(app, "keep_releases"), build, release_gunicorn_conf(app, websocket),
                Environment.of(app, data), tuple(app.get("release_command") or ()), data, restart),
        Service(unit_name(app), restart_handler=restart),
    ]


def _app_wheels(app: dict, origin, facts):
    # lazy: building an app's wheels (pip, packaging, zipfile) is needed only to plan its release
    from ..appwheels import app_wheels
    return app_wheels(app, origin, python_version(facts), facts.arch)


def release_gunicorn_conf(app: dict, websocket: bool) -> bytes:
    """gunicorn's settings for a release: the drain-on-stop of the demo's apps (threaded when the
    app takes threads or serves WebSockets), then the app's own workers, threads and timeout."""
    threads = app.get("threads", 16 if websocket else 1)
    own = (f"\n# The app's own settings (inventory: workers, threads, timeout).\n"
           f"workers = {setting(app, 'workers')}\nthreads = {threads}\ntimeout = {setting(app, 'timeout')}\n")
    return (gunicorn_conf(websocket or threads > 1) + own).encode()


def handlers(host, platform: Platform) -> dict[str, Handler]:
    return {restart_handler(a): Handler(restart_handler(a), f"restart {unit_name(a)}",
                                        f"systemctl restart {shlex.quote(unit_name(a))}") for a in host.apps}


def validators_for(platform: Platform) -> dict[str, str]:
    return {}
