"""Releases of an app of the user's own: /opt/provision/apps/NAME/releases/ID, each with its venv,
gunicorn settings and EnvironmentFile, and a `current` link that the unit runs.

ID is a short content hash of everything a release is made of (its wheels, wsgi, release
commands, gunicorn settings, environment), so the same input on the same host gives the same
ID and a second deploy changes nothing. A new release is checked before it serves: its venv
imports the wsgi target and its release commands succeed (as the app's user, with its
environment) before `current` switches to it (a new link renamed over the old one); after the
restart, its `health` path must answer 2xx or 3xx, else `current` switches back and the old
release is restarted. The last `keep_releases` releases are kept; older ones are pruned only
after a switch succeeded. `history` (one ID a line, the current one last) is the order they
served in: a rollback goes back one line.

Planning is pure: the shell text here runs on the host, in the apply script or a rollback.
"""
from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field
from typing import Callable

from .apply import CHECK_FAILED
from .facts import FactRequest, python_version
from .inventory.apps import DATA_DIR_VAR, wsgi_parts
from .resources import WHEELS_DIR, Change, Resource, _heredoc, python_check, verified_copy

q = shlex.quote
MARKER = ".provision-release"
HISTORY = "history"
ROLLED_BACK = "@@@ rolled-back "        # a rollback's line: app, from ID, to ID
HEALTH_WAIT = 20                    # s for a restarted app to answer at all
HEALTH_ERRORS = 15                  # answers that are not 2xx/3xx (0.2 s apart) before it counts as failed
# Python 3.6 and later: import the module, find the callable (a factory is not called).
IMPORT_CHECK = "import importlib, sys; getattr(importlib.import_module(sys.argv[1]), sys.argv[2])"


def env_value(value: str) -> str:
    """One value, double-quoted so that systemd's EnvironmentFile and a POSIX shell read it alike:
    both take a backslash before \\ " $ ` literally, and nothing else is special inside."""
    return '"' + "".join("\\" + c if c in '\\"$`' else c for c in value) + '"'


@dataclass(frozen=True)
class Environment:
    """What an app's EnvironmentFile holds. The secret values never appear in a repr."""
    plain: tuple[tuple[str, str], ...] = ()
    secret: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @classmethod
    def of(cls, app: dict, data_dir: str | None) -> "Environment":
        plain = [(k, str(v)) for k, v in (app.get("env") or {}).items()]
        if data_dir:
            plain.append((DATA_DIR_VAR, data_dir))
        return cls(tuple(sorted(plain)), tuple(sorted((k, str(v)) for k, v in (app.get("secret_env") or {}).items())))

    def __repr__(self) -> str:
        return f"Environment(plain={self.plain!r}, secret={[k for k, _ in self.secret]!r} (values not shown))"

    def render(self) -> bytes:
        lines = ["# Managed by provision: read by systemd (EnvironmentFile) as root; root-only, mode 0600."]
        lines += [f"{k}={env_value(v)}" for k, v in self.plain + self.secret]
        return ("\n".join(lines) + "\n").encode()


def manifest(name: str, wsgi: str, python: tuple[int, ...], wheels, digests, commands, gunicorn_conf: bytes,
             data_dir: str | None) -> str:
    """What a release is made of, without any secret (the marker file holds it, readable by all)."""
    lines = [f"app {name}", f"wsgi {wsgi}", f"python {python[0]}.{python[1]}"]
    lines += [f"wheel {w.name} {d}" for w, d in zip(wheels, digests)]
    lines += [f"gunicorn.conf.py {hashlib.sha256(gunicorn_conf).hexdigest()}"]
    lines += [f"command {c}" for c in commands] + ([f"data {data_dir}"] if data_dir else [])
    return "\n".join(lines) + "\n"


def release_id(manifest_text: str, environment: Environment) -> str:
    """12 hex digits of sha256 over the manifest and the EnvironmentFile: the same input gives
    the same ID; any change (a secret's too) gives another. The ID itself reveals nothing."""
    return hashlib.sha256(manifest_text.encode() + b"\0" + environment.render()).hexdigest()[:12]


def marker_text(manifest_text: str, rid: str) -> bytes:
    return (manifest_text + f"release {rid}\n").encode()


def keep_ids(history: list[str], keep: int) -> list[str]:
    """The releases pruning keeps: the last ``keep`` of the history (the current one is last)."""
    return history[-keep:] if keep > 0 else []


def shell_helpers(home: str, user: str, unit: str, health_url: str) -> str:
    """Shell functions of a release's switch, shared by deploy and rollback:
    fail (the one line naming the check), as_app (a command as the app's user, with its
    environment, in a release), switch (current -> a release, atomically), healthy (poll the
    health URL: 2xx/3xx within HEALTH_WAIT s)."""
    return f"""home={q(home)}; user={q(user)}; unit={q(unit)}; hist="$home/{HISTORY}"
fail() {{ echo "{CHECK_FAILED}$*"; exit 1; }}
as_app() {{ r="$1"; shift; ( set -a; . "$r/env"; set +a; cd "$r" && exec runuser -u "$user" -- \\
  env PATH="$r/venv/bin:/usr/local/bin:/usr/bin:/bin" "$@" ); }}
switch() {{ ln -sfn "$1" "$home/current.new" && mv -T "$home/current.new" "$home/current"; }}
healthy() {{ n=0; bad=0; last="no answer"
  while :; do
    code=$(curl -s -o /dev/null -w '%{{http_code}}' --max-time 2 {q(health_url)} 2>/dev/null) || code=000
    case "$code" in 2??|3??) return 0 ;; 000) ;; *) bad=$((bad + 1)); last=$code ;; esac
    n=$((n + 1)); [ $n -lt {HEALTH_WAIT * 5} ] && [ $bad -lt {HEALTH_ERRORS} ] || return 1
    sleep 0.2
  done; }}
"""


def prune_script(keep: int) -> str:
    """Remove every release but the last ``keep`` of the history."""
    return (f'kept=$(tail -n {keep} "$hist")\n'
            'for d in "$home"/releases/*/; do id=$(basename "$d"); '
            'printf "%s\\n" "$kept" | grep -q -x -F "$id" || rm -rf "$d"; done\n')


def restart_and_check(rid: str, health_path: str, keep: int) -> str:
    """Switch to releases/RID, restart, check health; switch back (or stop) on failure, prune on success."""
    return f"""prev=$(readlink "$home/current" 2>/dev/null || true)
switch releases/{rid}
touch "$hist"; {{ grep -v -x -F {rid} "$hist" || true; echo {rid}; }} > "$hist.new"; mv -f "$hist.new" "$hist"
systemctl enable -q "$unit"; systemctl restart "$unit"
if ! healthy; then
  seen=$last
  if [ -n "$prev" ] && [ "$prev" != releases/{rid} ]; then
    switch "$prev"; grep -v -x -F {rid} "$hist" > "$hist.new" || true; mv -f "$hist.new" "$hist"
    systemctl restart "$unit"; healthy || true
    fail "health: GET {health_path} answered $seen, not 2xx/3xx, after the restart of release {rid}; switched back to ${{prev#releases/}}"
  fi
  rm -f "$home/current"; systemctl stop "$unit"
  fail "health: GET {health_path} answered $seen, not 2xx/3xx, after the restart of release {rid}; no earlier release, the app is stopped"
fi
{prune_script(keep)}echo "release {rid} is current (was ${{prev#releases/}})"
"""


def rollback_script(name: str, home: str, user: str, unit: str, health_url: str, health_path: str) -> str:
    """Switch `current` back to the previous kept release, restart, check health (and switch forward
    again if it fails). No build, no upload. Prints "from ID to ID"."""
    return shell_helpers(home, user, unit, health_url) + f"""cur=$(readlink "$home/current" 2>/dev/null || true)
[ -n "$cur" ] || fail "rollback: {name} has no current release"
cur=${{cur#releases/}}; prev=
for id in $(grep -v -x -F "$cur" "$hist" 2>/dev/null | tac); do
  [ -f "$home/releases/$id/{MARKER}" ] && {{ prev=$id; break; }}
done
[ -n "$prev" ] || fail "rollback: {name} has no earlier release kept (current $cur)"
cp -p "$hist" "$hist.bak"
awk -v p="$prev" '{{ print }} $0 == p {{ exit }}' "$hist.bak" > "$hist.new" && mv -f "$hist.new" "$hist"
switch "releases/$prev"; systemctl restart "$unit"
if ! healthy; then
  seen=$last
  switch "releases/$cur"; mv -f "$hist.bak" "$hist"; systemctl restart "$unit"; healthy || true
  fail "health: {name}: GET {health_path} answered $seen, not 2xx/3xx, after the rollback to $prev; switched forward again to $cur"
fi
rm -f "$hist.bak"
echo "{ROLLED_BACK}{name} $cur $prev"
"""


@dataclass
class Release(Resource):
    """An app's current release: built (venv from checked wheels, settings, EnvironmentFile), checked
    (import, release commands), switched to, restarted and health-checked; see the module docstring."""
    name: str
    home: str
    user: str
    unit: str
    wsgi: str
    health: str
    bind: str                       # address:port the app listens on
    keep: int
    build: Callable                 # facts -> appwheels.AppWheels for the host's Python
    gunicorn_conf: bytes = field(repr=False)
    environment: Environment = field(default_factory=Environment)
    commands: tuple[str, ...] = ()
    data_dir: str | None = None
    restart_handler: str | None = None

    def __post_init__(self):
        self.label = f"release {self.home}"

    @property
    def current(self) -> str:
        return f"{self.home}/current"

    def request(self):
        # The marker is read through the link: it is the current release's, whichever that is.
        return FactRequest(paths={self.current, f"{self.current}/{MARKER}"}, packages={"python3"})

    def wanted(self, facts) -> tuple[str, bytes, object]:
        """(ID, marker content, wheels) of the release the inventory describes for this host."""
        house = self.build(facts)
        text = manifest(self.name, self.wsgi, python_version(facts), house.files, house.digests, self.commands,
                        self.gunicorn_conf, self.data_dir)
        rid = release_id(text, self.environment)
        return rid, marker_text(text, rid), house

    def _plan(self, facts):
        python = python_version(facts)
        if python is None:
            return Change(self.label, "no python3 on the host", script="echo 'python3 is missing' >&2; exit 1")
        rid, marker, house = self.wanted(facts)
        have = facts.file(self.current)
        if have.kind == "link" and have.target == f"releases/{rid}" and \
                facts.file(f"{self.current}/{MARKER}").sha256 == hashlib.sha256(marker).hexdigest():
            return Change(self.label, f"release {rid} is current")
        was = have.target.rpartition("/")[2] if have.kind == "link" else "none"
        uploads = tuple((str(f), f"{house.key}/{f.name}", d) for f, d in zip(house.files, house.digests))
        script = "\n".join(python_check(facts, python) + [self.script(rid, marker, house)])
        return self._change(f"release {rid} (was {was})", script, uploads=uploads,
                            satisfies=(self.restart_handler,) if self.restart_handler else ())

    def script(self, rid: str, marker: bytes, house) -> str:
        rel = f"{self.home}/releases/{rid}"
        module, attr = wsgi_parts(self.wsgi)
        names = [f.name for f in house.files]
        lines = [
            shell_helpers(self.home, self.user, self.unit, f"http://{self.bind}{self.health}"),
            f"rel={q(rel)}",
            f"if [ \"$(sha256sum < \"$rel/{MARKER}\" 2>/dev/null | cut -c1-64)\" != "
            f"{hashlib.sha256(marker).hexdigest()} ]; then",
            'rm -rf "$rel"; mkdir -p "$rel"',
            f"wheels=$(mktemp -d {WHEELS_DIR}/wheels.XXXXXX)",
            "trap 'rm -rf \"$wheels\"; [ -z \"$tmp\" ] || rm -f \"$tmp\"' EXIT",
            verified_copy(f'"$PROVISION_UPLOAD"/{q(house.key)}', '"$wheels"', zip(names, house.digests)),
            'python3 -m venv --without-pip "$rel/venv"',
            f'"$rel/venv/bin/python" "$wheels"/{q(house.installer.name)}/pip install -q --disable-pip-version-check '
            f'--no-index --find-links "$wheels" {" ".join(q(p) for p in house.pins)}',
            _heredoc(self.gunicorn_conf, '"$rel/gunicorn.conf.py"'),
            "( umask 077; " + _heredoc(self.environment.render(), '"$rel/env"') + "\n)",
            'chown root:root "$rel/env"; chmod 600 "$rel/env"',
        ]
        if self.data_dir:
            # Flask's instance folder of an installed app: <prefix>/var/<import name>-instance.
            lines.append(f'mkdir -p "$rel/venv/var" && ln -sfn {q(self.data_dir)} "$rel/venv/var/"{q(module + "-instance")}')
        lines += [
            f"out=$(as_app \"$rel\" python -c {q(IMPORT_CHECK)} {q(module)} {q(attr)} 2>&1) || {{ "
            f"printf '%s\\n' \"$out\" | tail -n 5; rm -rf \"$rel\"; "
            f"fail \"import: wsgi {self.wsgi} does not import in release {rid}: $(printf '%s' \"$out\" | tail -n 1)\"; }}",
        ]
        for command in self.commands:
            lines.append(f"echo {q('release command: ' + command)}")
            lines.append(f"as_app \"$rel\" sh -c {q(command)} || {{ rc=$?; rm -rf \"$rel\"; "
                         f"fail {q(f'release command: {command}:')}\" exited $rc in release {rid}\"; }}")
        lines += [_heredoc(marker, f'"$rel/{MARKER}"'), "fi",
                  restart_and_check(rid, self.health, self.keep)]
        return "\n".join(lines)
