"""The backend apps a host lists under `apps`: the demo's short form (name, port, message) or an
app of the user's own (name, port, and its code: a `project` folder or a pinned `package`, with
`wsgi` and the optional settings below). Checked on the merged values; every error is one line
naming the file, host and field, and never shows a `secret_env` value or a secret file's content.
"""
from __future__ import annotations

import re
from pathlib import Path


from ..sites.model import HEALTH_PATH
from .errors import InventoryError
from .graph import control_character

DEMO_KEYS = {"name", "port", "message"}
CODE_KEYS = {"project", "package"}          # exactly one of these, or message
SETTINGS = {"wsgi", "requirements", "env", "secret_env", "release_command", "data_dir", "files", "health",
            "workers", "threads", "timeout", "keep_releases"}
ALL_KEYS = DEMO_KEYS | CODE_KEYS | SETTINGS
# gunicorn's own numbers, bounded to what a backend host can carry.
RANGES = {"workers": (1, 64), "threads": (1, 256), "timeout": (1, 3600), "keep_releases": (1, 20)}
DEFAULTS = {"health": HEALTH_PATH, "workers": 2, "threads": 1, "timeout": 30, "keep_releases": 3, "data_dir": False}
# The variable that gives an app its data folder (data_dir: true); set by provision, not by env.
DATA_DIR_VAR = "PROVISION_DATA_DIR"

APP_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,30}")
# gunicorn's APP_MODULE: "module:callable", or a factory call with literal arguments ("pkg:create_app()").
WSGI_RE = re.compile(r"(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<callable>[A-Za-z_]\w*)"
                     r"(?P<call>\([A-Za-z0-9_.,=+-]*\))?")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
FILE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
HEALTH_RE = re.compile(r"/[A-Za-z0-9._~/-]*")


def is_code_app(app: dict) -> bool:
    """An app of the user's own (project or package), not the demo's message app."""
    return bool(CODE_KEYS & set(app))


def setting(app: dict, key: str):
    """An app's setting, or its default."""
    return app.get(key, DEFAULTS.get(key))


def wsgi_parts(wsgi: str) -> tuple[str, str]:
    """("module", "callable") of a checked `wsgi` value (a factory call's parentheses dropped)."""
    m = WSGI_RE.fullmatch(wsgi)
    return m.group("module"), m.group("callable")


def source_path(origin: str | None, value: str) -> Path:
    """A `project` or `requirements` path: relative to the file that set `apps`."""
    path = Path(value).expanduser()
    if path.is_absolute() or not origin or origin == "?":
        return path.resolve()
    return (Path(origin).parent / path).resolve()


def pinned(requirement: str):
    """The requirement (packaging's Requirement) if it names one exact version (NAME==VERSION,
    extras allowed), else None."""
    # lazy: packaging is needed only for the requirements of apps of your own
    from packaging.requirements import InvalidRequirement, Requirement
    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return None
    specs = list(req.specifier)
    if req.url or req.marker or len(specs) != 1 or specs[0].operator not in ("==", "===") \
            or "*" in specs[0].version:
        return None
    return req


def masked(apps, mask: str) -> list:
    """Apps as `invoke inventory` shows them: secret_env values and secret files' content masked."""
    if not isinstance(apps, list):
        return apps
    shown = []
    for app in apps:
        if isinstance(app, dict):
            app = dict(app)
            if isinstance(app.get("secret_env"), dict):
                app["secret_env"] = {k: mask for k in app["secret_env"]}
            if isinstance(app.get("files"), list):
                app["files"] = [{**f, "content": mask} if isinstance(f, dict) and f.get("secret") else f
                                for f in app["files"]]
        shown.append(app)
    return shown


def check_apps(where: str, apps: list, origin: str | None):
    """Every app of one host; ``where`` is "FILE: host 'NAME'", ``origin`` the file that set `apps`."""
    seen_ports: dict[int, str] = {}
    seen_names: set[str] = set()
    for i, app in enumerate(apps):
        field_ = f"apps[{i}]"
        if not isinstance(app, dict):
            raise InventoryError(f"{where}: field '{field_}' must be a mapping with name, port, message")
        unknown = set(app) - ALL_KEYS
        if unknown:
            raise InventoryError(f"{where}: field '{field_}.{sorted(map(str, unknown))[0]}' is unknown "
                                 f"(apps take {', '.join(sorted(DEMO_KEYS))}, or project/package with "
                                 f"{', '.join(sorted(SETTINGS))})")
        code = sorted(CODE_KEYS & set(app)) + (["message"] if "message" in app else [])
        if len(code) > 1:
            raise InventoryError(f"{where}: field '{field_}.{code[1]}': an app takes one of message, project, "
                                 f"package, not both {code[0]!r} and {code[1]!r}")
        missing = sorted({"name", "port"} - set(app) | ({"message"} if not code else set()))
        if missing:
            raise InventoryError(f"{where}: field '{field_}.{missing[0]}' is missing")
        aname, port = app["name"], app["port"]
        if not isinstance(aname, str) or not APP_NAME_RE.fullmatch(aname):
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
        if "health" in app:
            _health(where, field_, app["health"])
        if "message" in app:
            message = app["message"]
            if not isinstance(message, str) or not message or len(message) > 200 or control_character(message):
                raise InventoryError(f"{where}: field '{field_}.message' must be one line of 1-200 printable "
                                     "characters")
            extra = sorted((set(app) & SETTINGS) - {"health"})
            if extra:
                raise InventoryError(f"{where}: field '{field_}.{extra[0]}' is for an app of your own "
                                     "(project or package); the demo app takes name, port, message")
            continue
        _code_app(where, field_, app, origin)


def _health(where, field_, value):
    if not isinstance(value, str) or not HEALTH_RE.fullmatch(value) or "//" in value:
        raise InventoryError(f"{where}: field '{field_}.health' must be a URL path starting with / "
                             f"(such as /health), got {value!r}")


def _line(where, field_, value, what="one line of text") -> str:
    if not isinstance(value, str) or not value.strip() or control_character(value) is not None \
            or any(ord(c) < 32 for c in value):
        raise InventoryError(f"{where}: field '{field_}' must be {what}")
    return value


def _code_app(where: str, field_: str, app: dict, origin: str | None):
    if "project" in app:
        value = _line(where, f"{field_}.project", app["project"], "a path to a folder")
        folder = source_path(origin, value)
        if not folder.is_dir():
            raise InventoryError(f"{where}: field '{field_}.project': folder {str(folder)!r} does not exist")
        if not (folder / "pyproject.toml").is_file() and not (folder / "setup.py").is_file():
            raise InventoryError(f"{where}: field '{field_}.project': {str(folder)!r} has no pyproject.toml "
                                 "or setup.py")
    else:
        value = app["package"]
        if not isinstance(value, str) or pinned(value) is None:
            raise InventoryError(f"{where}: field '{field_}.package' must pin one version, as 'NAME==VERSION' "
                                 f"(a deploy must be reproducible), got {value!r}")
    if "wsgi" not in app:
        raise InventoryError(f"{where}: field '{field_}.wsgi' is missing (the app's WSGI callable, "
                             "as 'module:app' or 'module:create_app()')")
    if not isinstance(app["wsgi"], str) or not WSGI_RE.fullmatch(app["wsgi"]):
        raise InventoryError(f"{where}: field '{field_}.wsgi' must be 'module:callable' or "
                             f"'module:factory()', got {app['wsgi']!r}")
    if "requirements" in app:
        value = _line(where, f"{field_}.requirements", app["requirements"], "a path to a requirements file")
        if not source_path(origin, value).is_file():
            raise InventoryError(f"{where}: field '{field_}.requirements': file "
                                 f"{str(source_path(origin, value))!r} does not exist")
    names = {}
    for key in ("env", "secret_env"):
        if key in app:
            names.update(_environment(where, f"{field_}.{key}", app[key], secret=key == "secret_env",
                                      other=names))
    if "release_command" in app:
        commands = app["release_command"]
        if not isinstance(commands, list) or not commands:
            raise InventoryError(f"{where}: field '{field_}.release_command' must be a list of commands")
        for j, command in enumerate(commands):
            _line(where, f"{field_}.release_command[{j}]", command, "one command on one line")
    if "data_dir" in app and not isinstance(app["data_dir"], bool):
        raise InventoryError(f"{where}: field '{field_}.data_dir' must be true or false, got {app['data_dir']!r}")
    if "files" in app:
        _files(where, field_, app)
    for key, (low, high) in RANGES.items():
        if key in app:
            value = app[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InventoryError(f"{where}: field '{field_}.{key}' must be a whole number {low}-{high}, "
                                     f"got {value!r}")


def _environment(where, field_, mapping, secret: bool, other: dict) -> dict:
    if not isinstance(mapping, dict):
        raise InventoryError(f"{where}: field '{field_}' must be a mapping of NAME: value")
    for name, value in mapping.items():
        if not isinstance(name, str) or not ENV_NAME_RE.fullmatch(name):
            raise InventoryError(f"{where}: field '{field_}': {name!r} is not an environment variable name "
                                 "(letters, digits, _)")
        if name == DATA_DIR_VAR:
            raise InventoryError(f"{where}: field '{field_}.{name}' is set by provision (data_dir: true)")
        if name in other:
            raise InventoryError(f"{where}: field '{field_}.{name}' is also in {other[name]!r}")
        shown = "(value not shown)" if secret else f"got {value!r}"
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InventoryError(f"{where}: field '{field_}.{name}' must be text or a number {shown}")
        text = str(value)
        if "\0" in text or "\n" in text or "\r" in text or control_character(text) is not None:
            raise InventoryError(f"{where}: field '{field_}.{name}' must be one line without control "
                                 f"characters {shown}")
        other[name] = field_.rsplit(".", 1)[-1]
    return other


def _files(where, field_, app):
    files = app["files"]
    if not isinstance(files, list):
        raise InventoryError(f"{where}: field '{field_}.files' must be a list of {{path, content, secret}}")
    if not app.get("data_dir"):
        raise InventoryError(f"{where}: field '{field_}.files' needs data_dir: true (files go into the "
                             "app's data folder)")
    seen = set()
    for j, entry in enumerate(files):
        at = f"{field_}.files[{j}]"
        if not isinstance(entry, dict) or set(entry) - {"path", "content", "secret"} or \
                not {"path", "content"} <= set(entry):
            raise InventoryError(f"{where}: field '{at}' must be a mapping with path, content and "
                                 "optionally secret")
        path = entry["path"]
        if not isinstance(path, str) or not FILE_NAME_RE.fullmatch(path):
            raise InventoryError(f"{where}: field '{at}.path' must be a file name in the data folder "
                                 f"(letters, digits, . _ -), got {path!r}")
        if path in seen:
            raise InventoryError(f"{where}: field '{at}.path': two files named {path!r}")
        seen.add(path)
        secret = entry.get("secret", False)
        if not isinstance(secret, bool):
            raise InventoryError(f"{where}: field '{at}.secret' must be true or false")
        if not isinstance(entry["content"], str):
            raise InventoryError(f"{where}: field '{at}.content' must be text" +
                                 (" (value not shown)" if secret else ""))
