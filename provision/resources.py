"""Idempotent resources. Each one compares facts with the wanted state and plans a Change:
shell commands to run, or nothing with the reason why. Planning is pure: no I/O.
"""
from __future__ import annotations

import base64
import fnmatch
import hashlib
import ipaddress
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .facts import Facts, FactRequest, FileState, python_version
from .platforms import Platform

BACKUP_SUFFIX = ".provision-bak"
q = shlex.quote


@dataclass
class Change:
    """A planned step. ``script`` is empty when nothing needs to change."""
    label: str
    reason: str
    script: str = field(default="", repr=False)     # may carry a secret file's content
    notify: tuple[str, ...] = ()
    satisfies: tuple[str, ...] = ()     # handlers this step makes unnecessary (a fresh start)
    validate: str | None = None         # validation group (e.g. "apache") checked after the step
    rollback: str = ""                  # restores the previous state if validation fails
    commit: str = ""                    # runs once validation passed (drops backups)
    uploads: tuple = ()                 # (local path, remote name) pairs needed in $PROVISION_UPLOAD
    diff_path: str | None = None        # file whose old content --diff shows
    new_content: bytes | None = field(default=None, repr=False)
    secret: bool = False                # --diff never fetches nor shows the content, only its size

    def diff(self, old: bytes) -> str:
        """What --diff shows for this change (old: the file's current content, b"" if none)."""
        path = self.diff_path or self.label.split(" ", 1)[-1]
        if self.secret:
            return secret_diff(path, self.new_content)
        return unified_diff(path, old, self.new_content)

    @property
    def changed(self) -> bool:
        return bool(self.script)


class Resource:
    label = "resource"
    notify: tuple[str, ...] = ()
    when: Callable[[Facts], str | None] | None = None   # returns a reason to skip, or None

    def request(self) -> FactRequest:
        return FactRequest()

    def plan(self, facts: Facts) -> Change:
        if self.when is not None:
            skip = self.when(facts)
            if skip:
                return Change(self.label, skip)
        return self._plan(facts)

    def _plan(self, facts: Facts) -> Change:
        raise NotImplementedError

    def _change(self, reason: str, script: str, **kw) -> Change:
        return Change(self.label, reason, script, notify=self.notify, **kw)


class PathResource(Resource):
    """A resource about one path: its fact is that path's state."""
    path: str

    def request(self) -> FactRequest:
        return FactRequest(paths={self.path})


def _heredoc(data: bytes, dest: str) -> str:
    encoded = base64.encodebytes(data).decode()
    return f"base64 -d > {dest} <<'__PROVISION_EOF__'\n{encoded}__PROVISION_EOF__"


@dataclass
class File(PathResource):
    """A file with exact content, mode and owner, written atomically (temp file, then rename)."""
    path: str
    content: bytes | str = field(repr=False)
    mode: str = "644"
    owner: str = "root"
    group: str = "root"
    notify: tuple[str, ...] = ()
    validate: str | None = None
    after: str = ""                     # commands to run when the file changed (daemon-reload, ...)
    when: Callable | None = None
    kind_label: str = "file"
    secret: bool = False        # a key: its content never reaches --diff, --json or the screen

    def __post_init__(self):
        if isinstance(self.content, str):
            self.content = self.content.encode()
        self.label = f"{self.kind_label} {self.path}"

    def _plan(self, facts):
        have = facts.file(self.path)
        want_sha = hashlib.sha256(self.content).hexdigest()
        if have.kind == "file" and have.sha256 == want_sha:
            fixes = []
            if have.mode != self.mode:
                fixes.append(f"chmod {self.mode} {q(self.path)}")
            if (have.owner, have.group) != (self.owner, self.group):
                fixes.append(f"chown {q(self.owner)}:{q(self.group)} {q(self.path)}")
            if not fixes:
                return Change(self.label, "content, mode and owner match")
            return self._change("mode/owner differ", "\n".join(fixes))
        if have.kind == "directory":
            return Change(self.label, "is a directory, refusing to replace it", script="exit 1")
        if have.kind == "link":
            return self._write("replaces a link", have)
        return self._write("created" if have.kind == "absent" else "content differs", have)

    def _write(self, reason: str, have: FileState) -> Change:
        p = q(self.path)
        lines = [
            f"tmp=$(mktemp {q(self.path + '.XXXXXX')})",
            _heredoc(self.content, '"$tmp"'),
            f"chown {q(self.owner)}:{q(self.group)} \"$tmp\"",
            f"chmod {self.mode} \"$tmp\"",
        ]
        rollback = commit = ""
        if self.validate:
            if have.kind == "file":
                lines.append(f"cp -p {p} {q(self.path + BACKUP_SUFFIX)}")
                rollback = f"mv -f {q(self.path + BACKUP_SUFFIX)} {p}"
                commit = f"rm -f {q(self.path + BACKUP_SUFFIX)}"
            else:
                rollback = f"rm -f {p}"
        if have.kind == "link":
            lines.append(f"rm -f {p}")
        lines.append(f"mv -f \"$tmp\" {p}")
        if self.after:
            lines.append(self.after)
        return self._change(reason, "\n".join(lines), validate=self.validate, rollback=rollback,
                            commit=commit, diff_path=self.path if have.kind == "file" else None,
                            new_content=self.content, secret=self.secret)


@dataclass
class FileByFacts(File):
    """A File whose content depends on a fact known only at plan time (the Apache version):
    `content` is what is assumed without facts, `choose(facts)` the content to plan with."""
    choose: Callable | None = None
    needs: FactRequest = field(default_factory=FactRequest)

    def request(self):
        return super().request().merge(self.needs)

    def _plan(self, facts):
        return File._plan(replace(self, content=self.choose(facts), choose=None), facts)


@dataclass
class Directory(PathResource):
    """A folder with its mode and owner."""
    path: str
    mode: str = "755"
    owner: str = "root"
    group: str = "root"
    when: Callable | None = None

    def __post_init__(self):
        self.label = f"directory {self.path}"

    def _plan(self, facts):
        have = facts.file(self.path)
        p = q(self.path)
        if have.kind == "directory":
            if (have.mode, have.owner, have.group) == (self.mode, self.owner, self.group):
                return Change(self.label, "exists with the right mode and owner")
            return self._change("mode/owner differ",
                                f"chmod {self.mode} {p}\nchown {q(self.owner)}:{q(self.group)} {p}")
        if have.kind != "absent":
            return Change(self.label, f"is a {have.kind}, refusing to replace it", script="exit 1")
        return self._change("created", f"mkdir -p {p}\nchmod {self.mode} {p}\n"
                                       f"chown {q(self.owner)}:{q(self.group)} {p}")


@dataclass
class FolderIfMissing(PathResource):
    """A folder that is made (755, root's) when missing, and never changed once it exists: one a
    route serves may be anyone's (``/tmp``, an app's data), so its mode and owner are left alone.
    A link or a file there is refused, never followed."""
    path: str

    def __post_init__(self):
        self.label = f"directory {self.path}"

    def _plan(self, facts):
        have = facts.file(self.path)
        if have.kind == "directory":
            return Change(self.label, f"exists ({have.owner}:{have.group} {have.mode}): left as it is")
        if have.kind != "absent":
            return Change(self.label, f"is a {have.kind}, not a folder: refusing to serve it", script="exit 1")
        parent = self.path.rsplit("/", 1)[0] or "/"
        # mkdir without -p fails on anything that appeared meanwhile: it never reuses what it did not make
        return self._change("created", f"mkdir -p {q(parent)}\nmkdir -m 755 {q(self.path)}")


@dataclass
class Link(PathResource):
    """A symbolic link to a target."""
    path: str
    target: str
    notify: tuple[str, ...] = ()
    validate: str | None = None

    def __post_init__(self):
        self.label = f"link {self.path}"

    def _plan(self, facts):
        have = facts.file(self.path)
        if have.kind == "link" and have.target == self.target:
            return Change(self.label, f"points to {self.target}")
        if have.kind not in ("link", "absent"):
            return Change(self.label, f"is a {have.kind}, refusing to replace it", script="exit 1")
        rollback = f"ln -sfn {q(have.target)} {q(self.path)}" if have.kind == "link" else f"rm -f {q(self.path)}"
        return self._change("created" if have.kind == "absent" else f"pointed to {have.target}",
                            f"ln -sfn {q(self.target)} {q(self.path)}", validate=self.validate,
                            rollback=rollback if self.validate else "")


@dataclass
class Absent(Resource):
    """No file at path. ``installed_by``: a package that ships it, which may be installed
    earlier in the same run, so that a fresh host gets it removed on the first run."""
    path: str
    notify: tuple[str, ...] = ()
    validate: str | None = None
    installed_by: str | None = None

    def __post_init__(self):
        self.label = f"absent {self.path}"

    def request(self):
        return FactRequest(paths={self.path}, packages={self.installed_by} if self.installed_by else set())

    def _plan(self, facts):
        have = facts.file(self.path)
        if have.kind == "absent" and self.installed_by and self.installed_by not in facts.packages:
            return self._change(f"{self.installed_by} is about to install it", f"rm -f {q(self.path)}")
        if have.kind == "absent":
            return Change(self.label, "already absent")
        if have.kind == "directory":
            return Change(self.label, "is a directory, refusing to remove it", script="exit 1")
        p, bak = q(self.path), q(self.path + BACKUP_SUFFIX)
        if have.kind == "link":
            return self._change("removed link", f"rm -f {p}", validate=self.validate,
                                rollback=f"ln -sfn {q(have.target)} {p}" if self.validate else "")
        if self.validate:
            return self._change("removed", f"mv -f {p} {bak}", validate=self.validate,
                                rollback=f"mv -f {bak} {p}", commit=f"rm -f {bak}")
        return self._change("removed", f"rm -f {p}")


@dataclass
class StaleFiles(Resource):
    """No file matching ``pattern`` (a folder and a file-name glob, read by the listing fact) but
    those in ``keep``: what an earlier run wrote and this one no longer renders, such as the
    routes file of a site taken out of the inventory."""
    pattern: str
    keep: tuple[str, ...] = ()
    notify: tuple[str, ...] = ()
    validate: str | None = None

    def __post_init__(self):
        self.label = f"no stale {self.pattern}"

    def request(self):
        return FactRequest(listings={self.pattern})

    def _plan(self, facts):
        stale = sorted(p for p in facts.listed if fnmatch.fnmatchcase(p, self.pattern) and p not in self.keep)
        if not stale:
            return Change(self.label, "none")
        moved = [(q(p), q(p + BACKUP_SUFFIX)) for p in stale]
        reason = f"removed {', '.join(stale)}"
        if self.validate:
            return self._change(reason, "\n".join(f"mv -f {p} {bak}" for p, bak in moved), validate=self.validate,
                                rollback="\n".join(f"mv -f {bak} {p}" for p, bak in moved),
                                commit="\n".join(f"rm -f {bak}" for _, bak in moved))
        return self._change(reason, "rm -f " + " ".join(p for p, _ in moved))


@dataclass
class Packages(Resource):
    """Packages installed, in one install command for the missing ones."""
    platform: Platform
    names: tuple[str, ...]
    when: Callable | None = None
    notify: tuple[str, ...] = ()        # handlers an install calls for
    satisfies: tuple[str, ...] = ()     # and those it makes unnecessary

    def __post_init__(self):
        self.label = f"packages {' '.join(self.names)}"

    def request(self):
        return FactRequest(packages=set(self.names))

    def _plan(self, facts):
        missing = [n for n in self.names if n not in facts.packages]
        if not missing:
            return Change(self.label, "all installed")
        cmd = self.platform.package_install.format(names=" ".join(q(n) for n in missing))
        return self._change(f"missing {' '.join(missing)}", cmd, satisfies=self.satisfies)


@dataclass
class SystemUser(Resource):
    """A system user with its home and shell."""
    name: str
    home: str
    shell: str

    def __post_init__(self):
        self.label = f"user {self.name}"

    def request(self):
        return FactRequest(users={self.name})

    def _plan(self, facts):
        if self.name in facts.users:
            return Change(self.label, "exists")
        return self._change("created", f"useradd --system --home-dir {q(self.home)} --no-create-home "
                                       f"--shell {q(self.shell)} {q(self.name)}")


@dataclass
class Service(Resource):
    """A systemd service enabled at boot and running. Starting it satisfies a pending restart."""
    unit: str
    restart_handler: str | None = None
    reload_on_start: bool = False

    def __post_init__(self):
        if "." not in self.unit:
            self.unit += ".service"        # systemctl show reports Id with the suffix
        self.label = f"service {self.unit}"

    def request(self):
        return FactRequest(units={self.unit})

    def _plan(self, facts):
        props = facts.unit(self.unit)
        enabled = props.get("UnitFileState") == "enabled"
        active = props.get("ActiveState") == "active"
        if enabled and active:
            return Change(self.label, f"enabled and running (MainPID {props.get('MainPID', '?')})")
        u = q(self.unit)
        if not active:
            satisfies = (self.restart_handler,) if self.restart_handler else ()
            return self._change("started" + ("" if enabled else " and enabled"),
                                f"systemctl enable --now {u}" if not enabled else f"systemctl start {u}",
                                satisfies=satisfies)
        return self._change("enabled", f"systemctl enable {u}")


@dataclass
class ApacheModules(Resource):
    """Debian: a2enmod the missing ones. An `optional` module (one the config needs only sometimes)
    that provision enabled is marked by a file in `marks`, and a2dismod'ed again once not wanted;
    one enabled by someone else is left alone."""
    names: tuple[str, ...]
    notify: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    marks: str | None = None
    choose: Callable | None = None      # facts -> the names wanted, when they depend on a fact
    needs: FactRequest = field(default_factory=FactRequest)
    restart_for: tuple[str, ...] = ()   # modules that need a full restart, not a reload, once enabled
    restart: str | None = None          # the handler for that (it replaces `notify`'s)
    enable: bool = True         # a2enmod the missing ones
    disable: bool = True        # a2dismod the optional ones no longer wanted

    def __post_init__(self):
        self.label = f"apache modules {' '.join(self.names)}" if self.enable else \
            f"apache modules not needed off ({' '.join(self.optional)})"

    def _mark(self, name: str) -> str:
        return f"{self.marks}/{name}"

    def request(self):
        return FactRequest(paths={self._mark(n) for n in self.optional} if self.marks else set()).merge(self.needs)

    def _plan(self, facts):
        names = self.choose(facts) if self.choose else self.names
        missing = [n for n in names if n not in facts.apache_modules] if self.enable else []
        unwanted = [n for n in self.optional if n not in names and n in facts.apache_modules
                    and self.marks and facts.file(self._mark(n)).kind == "file"] if self.disable else []
        lines, reasons = [], []
        if missing:
            lines.append("a2enmod -q " + " ".join(q(n) for n in missing))
            marked = [n for n in missing if n in self.optional and self.marks]
            if marked:
                lines += [f"mkdir -p {q(self.marks)}", "touch " + " ".join(q(self._mark(n)) for n in marked)]
            reasons.append(f"enabled {' '.join(missing)}")
        if unwanted:
            lines += ["a2dismod -q " + " ".join(q(n) for n in unwanted),
                      "rm -f " + " ".join(q(self._mark(n)) for n in unwanted)]
            reasons.append(f"disabled {' '.join(unwanted)} (no longer needed)")
        if not lines:
            return Change(self.label, "all enabled" if self.enable else "none enabled that is not needed")
        if self.restart and set(missing) & set(self.restart_for):
            return Change(self.label, "; ".join(reasons), "\n".join(lines), notify=(self.restart,),
                          satisfies=self.notify)
        return self._change("; ".join(reasons), "\n".join(lines))


@dataclass
class ApacheModuleDropin(Resource):
    """RedHat: load the modules the package's conf.modules.d does not load, from one drop-in of ours."""
    path: str
    modules: dict                     # a2enmod name -> (module id, shared object)
    package: str
    notify: tuple[str, ...] = ()
    validate: str | None = None
    choose: Callable | None = None    # facts -> the modules wanted, when they depend on a fact

    def __post_init__(self):
        self.label = f"apache modules {' '.join(self.modules)}"

    def request(self):
        return FactRequest(paths={self.path}, packages={self.package})

    def _plan(self, facts):
        if self.package not in facts.packages:
            # A fresh httpd package loads all four from conf.modules.d/00-proxy.conf
            # (shared fixtures: centos7/conf.modules.d/00-proxy.conf); checked on the next run.
            return Change(self.label, f"{self.package} not installed yet: its 00-proxy.conf loads them")
        wanted = self.choose(facts) if self.choose else self.modules
        missing = [(mid, so) for mid, so in wanted.values()
                   if facts.load_modules.get(mid, self.path) == self.path]
        if not missing:
            if facts.file(self.path).kind == "absent":
                return Change(self.label, "all loaded by the package's conf.modules.d")
            change = Absent(self.path, notify=self.notify, validate=self.validate).plan(facts)
            change.label, change.reason = self.label, "drop-in no longer needed: " + change.reason
            return change
        body = "# Managed by provision: proxy modules the package's conf.modules.d does not load.\n" + \
            "".join(f"LoadModule {mid} {so}\n" for mid, so in missing)
        change = File(self.path, body, notify=self.notify, validate=self.validate).plan(facts)
        change.label = self.label
        return change


@dataclass
class SELinuxBoolean(Resource):
    """An SELinux boolean set, persistently."""
    name: str
    value: bool = True

    def __post_init__(self):
        self.label = f"selinux boolean {self.name}"

    def _plan(self, facts):
        if facts.selinux in (None, "Disabled"):
            return Change(self.label, "SELinux is not enabled")
        if facts.sebools.get(self.name) == self.value:
            return Change(self.label, f"already {'on' if self.value else 'off'}")
        return self._change(f"set {'on' if self.value else 'off'} (SELinux {facts.selinux})",
                            f"setsebool -P {q(self.name)} {'on' if self.value else 'off'}")


@dataclass
class Firewalld(Resource):
    """A firewalld service ("http") or port ("8080/tcp") open, permanently and now."""
    kind: str                   # "service" or "port"
    name: str

    def __post_init__(self):
        self.label = f"firewalld {self.kind} {self.name}"

    def _plan(self, facts):
        if not facts.firewalld:
            return Change(self.label, "firewalld is not running")
        open_now = facts.firewalld_services if self.kind == "service" else facts.firewalld_ports
        if self.name in open_now:
            return Change(self.label, "already open")
        return self._change("opened", f"firewall-cmd -q --permanent --add-{self.kind}={q(self.name)}\n"
                                      "firewall-cmd -q --reload")


RICH_RULE_RE = re.compile(r'^rule family="(ipv[46])" source address="([^"]+)" port port="(\d+)" '
                          r'protocol="(\w+)" accept$')


def rich_rule(source: str, port: str) -> str:
    """A firewalld rich rule accepting ``port`` ("8080/tcp") from one address, spelled as
    ``firewall-cmd --list-rich-rules`` prints it (firewalld src/firewall/core/rich.py: Rich_Rule,
    Rich_Source and Rich_Port __str__)."""
    number, proto = port.split("/")
    family = f"ipv{ipaddress.ip_address(source).version}"
    return f'rule family="{family}" source address="{source}" port port="{number}" protocol="{proto}" accept'


@dataclass
class FirewalldPortFrom(Resource):
    """A port open in firewalld to the given addresses only (one rich rule each), never to the
    whole zone: a zone-wide opening of the port, or a rule for an address no longer listed, goes."""
    port: str                       # "8080/tcp"
    sources: tuple[str, ...]

    def __post_init__(self):
        self.label = f"firewalld port {self.port} from {', '.join(self.sources)}"

    def _plan(self, facts):
        if not facts.firewalld:
            return Change(self.label, "firewalld is not running")
        number, proto = self.port.split("/")
        wanted = {rich_rule(s, self.port) for s in self.sources}
        have = {r for r in facts.firewalld_rich_rules
                if (m := RICH_RULE_RE.match(r)) and (m.group(3), m.group(4)) == (number, proto)}
        steps = [f"--add-rich-rule={q(r)}" for r in sorted(wanted - have)]
        steps += [f"--remove-rich-rule={q(r)}" for r in sorted(have - wanted)]
        if self.port in facts.firewalld_ports:
            steps.append(f"--remove-port={q(self.port)}")
        if not steps:
            return Change(self.label, "open to exactly these addresses")
        return self._change("limited to " + ", ".join(self.sources),
                            "".join(f"firewall-cmd -q --permanent {s}\n" for s in steps) + "firewall-cmd -q --reload")


def FirewalldService(service: str) -> Firewalld:
    return Firewalld("service", service)


def FirewalldPort(port: str) -> Firewalld:
    return Firewalld("port", port)


WHEELS_DIR = "/var/lib/provision"     # root's own: uploaded wheels are copied here and checked


def verified_copy(source: str, dest: str, files) -> str:
    """Shell lines copying ``files`` ((name, sha256) pairs) from ``source`` (a folder the login
    user can write) into ``dest`` (root's own), then checking every copy's sha256 there, so that
    nothing swapped after the check can be used. Fails naming each file that does not match."""
    files = list(files)
    copies = [f"cp {source}/{q(name)} {dest}/{q(name)}" for name, _ in files]
    sums = "".join(f"{digest}  {name}\n" for name, digest in files)
    return "\n".join(copies + [
        f"(cd {dest} && printf %s {q(sums)} | sha256sum -c --quiet -) || "
        "{ echo 'uploaded wheels do not match their sha256: refusing to install them' >&2; exit 1; }",
    ])


def python_check(facts, python: tuple[int, ...]) -> list[str]:
    """Shell lines run before wheels chosen for `python` are installed. With no python3 when the
    facts were read, the wheels are the release's python3's (facts.python_version), which the
    packages step installs earlier in the same run: check that it is the one planned for."""
    if facts.python:
        return []
    major, minor = python[:2]
    return [f"python3 -c 'import sys; sys.exit(sys.version_info[:2] != ({major}, {minor}))' || "
            f"{{ echo 'python3 is not {major}.{minor}, the version the wheels were chosen for' >&2; exit 1; }}"]


@dataclass
class Venv(Resource):
    """A virtualenv holding exactly the given wheels, installed offline from uploaded files, each
    checked by sha256 as root in a root-owned copy. A marker file inside the venv records the
    wheel set; a different set rebuilds the venv."""
    path: str
    wheels: Callable        # facts -> Wheelhouse (pins resolved for the host's python)
    notify: tuple[str, ...] = ()

    def __post_init__(self):
        self.label = f"venv {self.path}"

    @property
    def marker(self):
        return f"{self.path}/.provision-wheels"

    def request(self):
        return FactRequest(paths={self.marker}, packages={"python3"})

    def _plan(self, facts):
        python = python_version(facts)
        if python is None:
            return Change(self.label, "no python3 on the host", script="echo 'python3 is missing' >&2; exit 1")
        house = self.wheels(facts)
        want = house.manifest.encode()
        if facts.file(self.marker).sha256 == hashlib.sha256(want).hexdigest():
            return Change(self.label, f"wheels match ({', '.join(house.pins)})")
        p = q(self.path)
        reqs = " ".join(q(r) for r in house.pins)
        names = [f.name for f in house.files]
        script = "\n".join(python_check(facts, python) + [
            # Root installs only what it copied into its own folder and checked there.
            f"wheels=$(mktemp -d {WHEELS_DIR}/wheels.XXXXXX)",
            "trap 'rm -rf \"$wheels\"' EXIT",
            verified_copy(f'"$PROVISION_UPLOAD"/{q(house.key)}', '"$wheels"', zip(names, house.digests)),
            f"rm -rf {p}",
            f"python3 -m venv --without-pip {p}",
            f"{p}/bin/python \"$wheels\"/{q(house.installer.name)}/pip install -q --disable-pip-version-check "
            f"--no-index --find-links \"$wheels\" {reqs}",
            _heredoc(want, q(self.marker)),
        ])
        uploads = tuple((str(f), f"{house.key}/{f.name}", digest) for f, digest in zip(house.files, house.digests))
        return self._change("installed " + ", ".join(house.pins), script, uploads=uploads)


def secret_diff(path: str, new: bytes) -> str:
    """The whole --diff of a secret file: its size, never its content, old or new."""
    return f"{path}: (secret: {len(new)} bytes, sha256 changed)\n"


def unified_diff(path: str, old: bytes, new: bytes) -> str:
    # lazy: only --diff shows diffs
    import difflib
    return "".join(difflib.unified_diff(old.decode(errors="replace").splitlines(True),
                                        new.decode(errors="replace").splitlines(True),
                                        f"{path} (host)", f"{path} (wanted)"))
