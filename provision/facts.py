"""Facts: one POSIX shell script that reads a host's state, and pure parsers for its output.

The script only reads. It prints sections headed by ``@@@ <name>`` lines, so that every
fact a role needs comes back in a single SSH round trip. Parsers take text and return data.
"""
from __future__ import annotations

import dataclasses
import re
import shlex
from dataclasses import dataclass, field

from .platforms import (APACHE_VERSION_BY_RELEASE, FAMILY_BY_ID, PLATFORMS, PYTHON_VERSION_BY_RELEASE,
                        RELEASE_DIFFERENCES, SUPPORTED_RELEASES, Platform)

PENDING_DIR = "/var/lib/provision/pending"
RUN_DIR = "/var/lib/provision/runs"        # detached applies: script, output, pid, exit status
MARK = "@@@ "
CERTIFICATE = "certificate "     # a section per requested certificate file: "certificate <path>"


class UnsupportedHost(Exception):
    """The host runs an OS this tool does not manage."""


@dataclass
class FactRequest:
    """What a role wants to know about a host, whatever its family."""
    packages: set[str] = field(default_factory=set)
    units: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    listings: set[str] = field(default_factory=set)     # "/folder/name-*.ext": the files it matches
    certificates: set[str] = field(default_factory=set)     # PEM files: their CERTIFICATE blocks only

    def merge(self, other: "FactRequest") -> "FactRequest":
        return FactRequest(self.packages | other.packages, self.units | other.units,
                           self.paths | other.paths, self.users | other.users,
                           self.listings | other.listings, self.certificates | other.certificates)


@dataclass(frozen=True)
class FileState:
    """A path as the facts script saw it."""
    kind: str                   # file, directory, link, absent
    mode: str = ""              # octal, as stat %a prints it ("644")
    owner: str = ""
    group: str = ""
    sha256: str = ""
    target: str = ""            # for links


ABSENT = FileState("absent")


@dataclass(frozen=True)
class Orphan:
    """An apply whose connection was lost: it ran on, and its record stayed under RUN_DIR."""
    run: str            # the record's name
    status: str         # its exit status, or "killed" (no status, process gone)
    log: str            # its step and done lines, as the apply printed them


@dataclass
class Facts:
    """Everything one run of the facts script read on a host."""
    os: dict[str, str]
    platform: Platform
    arch: str = ""
    python: tuple[int, ...] | None = None
    packages: dict[str, str] = field(default_factory=dict)     # installed name -> version
    units: dict[str, dict[str, str]] = field(default_factory=dict)
    files: dict[str, FileState] = field(default_factory=dict)
    listed: set[str] = field(default_factory=set)      # the files the requested listings matched
    users: set[str] = field(default_factory=set)
    apache_modules: set[str] = field(default_factory=set)      # a2enmod names (Debian)
    load_modules: dict[str, str] = field(default_factory=dict)  # module id -> file (RedHat)
    selinux: str | None = None                                 # Enforcing/Permissive/Disabled, None if absent
    sebools: dict[str, bool] = field(default_factory=dict)
    firewalld: bool = False
    firewalld_services: set[str] = field(default_factory=set)
    firewalld_ports: set[str] = field(default_factory=set)     # "8080/tcp"
    firewalld_rich_rules: set[str] = field(default_factory=set)    # as --list-rich-rules prints them
    pending: set[str] = field(default_factory=set)
    orphans: list[Orphan] = field(default_factory=list)
    certificates: dict[str, str] = field(default_factory=dict)     # path -> its certificates (PEM), if any

    @property
    def family(self) -> str:
        return self.platform.family

    def file(self, path: str) -> FileState:
        return self.files.get(path, ABSENT)

    def unit(self, name: str) -> dict[str, str]:
        return self.units.get(name, {})


def _q(words) -> str:
    return " ".join(shlex.quote(w) for w in sorted(words))


LISTING_NAME_RE = re.compile(r"^[A-Za-z0-9._-]*\*[A-Za-z0-9._-]*$")
# What uname -m prints (x86_64, aarch64, armv7l, ppc64le, s390x): it names a local cache folder.
ARCH_RE = re.compile(r"[A-Za-z0-9_]{1,32}")


def listing_glob(pattern: str) -> str:
    """Shell text for a listing: the folder quoted, the file-name glob (one *) left to the shell."""
    folder, _, name = pattern.rpartition("/")
    if not folder.startswith("/") or not LISTING_NAME_RE.match(name):
        raise ValueError(f"a listing is /folder/name-*.ext, not {pattern!r}")
    return f"{shlex.quote(folder)}/{name}"


def script(req: FactRequest) -> str:
    """The read-only shell script that gathers every requested fact."""
    deb = PLATFORMS["debian"]
    rh = PLATFORMS["redhat"]
    lines = [
        "export LC_ALL=C",
        f"echo '{MARK}os-release'; cat /etc/os-release 2>/dev/null",
        f"echo '{MARK}arch'; uname -m",
        f"echo '{MARK}python'; command -v python3 >/dev/null 2>&1 && python3 --version 2>&1",
    ]
    if req.packages:
        lines.append(
            f"echo '{MARK}packages'; if command -v dpkg-query >/dev/null 2>&1; then "
            f"{deb.package_query} {_q(req.packages)} 2>/dev/null; "
            f"elif command -v rpm >/dev/null 2>&1; then {rh.package_query} {_q(req.packages)}; fi")
    if req.units:
        lines.append(f"echo '{MARK}units'; systemctl show --no-pager -p Id -p LoadState -p ActiveState "
                     f"-p SubState -p UnitFileState -p MainPID -p ActiveEnterTimestamp {_q(req.units)}")
    if req.paths:
        lines.append(
            f"echo '{MARK}files'; for f in {_q(req.paths)}; do "
            "if [ -L \"$f\" ]; then echo \"$f link - - - - $(readlink \"$f\")\"; "
            "elif [ -d \"$f\" ]; then echo \"$f directory $(stat -c '%a %U %G' \"$f\") -\"; "
            "elif [ -f \"$f\" ]; then echo \"$f file $(stat -c '%a %U %G' \"$f\") "
            "$(sha256sum < \"$f\" | cut -c1-64)\"; "
            "else echo \"$f absent\"; fi; done")
    if req.listings:
        globs = " ".join(listing_glob(p) for p in sorted(req.listings))
        lines.append(f"echo '{MARK}listing'; for f in {globs}; do "
                     "if [ -f \"$f\" ]; then echo \"$f\"; fi; done")
    if req.users:
        lines.append(f"echo '{MARK}users'; getent passwd {_q(req.users)} | cut -d: -f1")
    lines += certificate_lines(req.certificates)
    lines += [
        f"echo '{MARK}mods-enabled'; {deb.modules_listing} 2>/dev/null",
        f"echo '{MARK}loadmodules'; grep -H '^[[:space:]]*LoadModule' /etc/httpd/conf.modules.d/*.conf 2>/dev/null",
        f"echo '{MARK}selinux'; if command -v getenforce >/dev/null 2>&1; then getenforce; "
        "getsebool httpd_can_network_connect 2>/dev/null; fi",
        f"echo '{MARK}firewalld'; if systemctl is-active --quiet firewalld 2>/dev/null; then "
        "firewall-cmd --state; firewall-cmd --list-services; echo \"ports $(firewall-cmd --list-ports)\"; "
        "firewall-cmd --list-rich-rules; fi",
        f"echo '{MARK}pending'; ls -1 {PENDING_DIR} 2>/dev/null",
        f"echo '{MARK}orphans'; {ORPHANS}",
        "exit 0",
    ]
    return "\n".join(lines) + "\n"


def certificate_lines(paths) -> list[str]:
    """A section per certificate file. Only its CERTIFICATE blocks are printed: nothing else in
    the file (a key) ever leaves the host."""
    return [f"echo {shlex.quote(MARK + CERTIFICATE + path)}; "
            f"sed -n '/^-----BEGIN CERTIFICATE-----$/,/^-----END CERTIFICATE-----$/p' {shlex.quote(path)} 2>/dev/null"
            for path in sorted(paths)]


# Records of finished applies whose streamer died with its connection (a live streamer holds the
# host lock until it removed its record), or of applies killed without a status. Step lines are
# re-marked so that they do not start sections here.
ORPHANS = (f"for out in {RUN_DIR}/*.out; do [ -e \"$out\" ] || continue; run=${{out%.out}}; "
           "if [ -e \"$run.rc\" ]; then st=$(cat \"$run.rc\"); "
           "elif [ ! -e \"$run.pid\" ] || kill -0 \"$(cat \"$run.pid\")\" 2>/dev/null; then continue; "
           "else st=killed; fi; echo \"run ${run##*/} $st\"; "
           "sed -n -e 's/^@@@ step /  step /p' -e 's/^@@@ done /  done /p' \"$out\"; done")


def split_sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith(MARK):
            current = line[len(MARK):].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return sections


def parse(text: str) -> Facts:
    s = split_sections(text)
    os_release = parse_os_release("\n".join(s.get("os-release", [])))
    platform = platform_for(os_release)
    selinux, sebools = parse_selinux(s.get("selinux", []))
    firewalld, services, ports = parse_firewalld(s.get("firewalld", []))
    return Facts(
        os=os_release, platform=platform,
        arch=parse_arch(s.get("arch", [])),
        python=parse_python_version("\n".join(s.get("python", []))),
        packages=parse_packages(s.get("packages", [])),
        units=parse_units("\n".join(s.get("units", []))),
        files=parse_files(s.get("files", [])),
        listed={p for p in s.get("listing", []) if p.startswith("/")},
        users={u.strip() for u in s.get("users", []) if u.strip()},
        apache_modules=parse_mods_enabled(s.get("mods-enabled", [])),
        load_modules=parse_loadmodules(s.get("loadmodules", [])),
        selinux=selinux, sebools=sebools,
        firewalld=firewalld, firewalld_services=services, firewalld_ports=ports,
        firewalld_rich_rules={line.strip() for line in s.get("firewalld", []) if line.startswith("rule ")},
        pending={p.strip() for p in s.get("pending", []) if p.strip()},
        orphans=parse_orphans(s.get("orphans", [])),
        certificates=parse_certificates(s),
    )


def parse_arch(lines: list[str]) -> str:
    """uname -m's word ("" when missing); anything else (a '/', '..', a space) is refused: the host's
    output is not trusted, and the architecture becomes part of a path on the control machine."""
    arch = (lines or [""])[0].strip()
    if arch and not ARCH_RE.fullmatch(arch):
        raise UnsupportedHost(f"uname -m printed {arch[:40]!r}, not a machine architecture")
    return arch


def parse_certificates(sections: dict[str, list[str]]) -> dict[str, str]:
    """The certificate sections: path -> its CERTIFICATE blocks (files without any are left out)."""
    return {name[len(CERTIFICATE):]: "\n".join(lines) + "\n" for name, lines in sections.items()
            if name.startswith(CERTIFICATE) and any(line.startswith("-----BEGIN CERTIFICATE") for line in lines)}


def parse_os_release(text: str) -> dict[str, str]:
    result = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            parts = shlex.split(value)
        except ValueError:
            parts = [value.strip("\"'")]
        result[key.strip()] = parts[0] if parts else ""
    return result


def platform_for(os_release: dict[str, str]) -> Platform:
    os_id = os_release.get("ID", "")
    if not os_id:
        raise UnsupportedHost("no /etc/os-release (or no ID in it)")
    family = FAMILY_BY_ID.get(os_id)
    if family is None:
        for like in os_release.get("ID_LIKE", "").split():
            family = family or FAMILY_BY_ID.get(like)
    if family is None:
        raise UnsupportedHost(f"unsupported OS {os_release.get('PRETTY_NAME', os_id)!r}")
    version = os_release.get("VERSION_ID", "")
    known = SUPPORTED_RELEASES.get(os_id)
    if known and version.split(".")[0] not in [k.split(".")[0] for k in known] and version not in known:
        raise UnsupportedHost(f"unsupported release {os_release.get('PRETTY_NAME', os_id)!r}")
    return release_platform(PLATFORMS[family], os_id, version)


def release_platform(platform: Platform, os_id: str, version: str) -> Platform:
    """The family's platform with the fields this release has instead (RELEASE_DIFFERENCES)."""
    differences = RELEASE_DIFFERENCES.get((os_id, version.split(".")[0]))
    return dataclasses.replace(platform, **differences) if differences else platform


def every_platform() -> list[Platform]:
    """Each family's platform and each release's variant of it: what a fact request must cover."""
    variants = [release_platform(PLATFORMS[FAMILY_BY_ID[os_id]], os_id, version)
                for os_id, version in RELEASE_DIFFERENCES]
    return list(PLATFORMS.values()) + variants


def apache_version(facts: Facts) -> tuple[int, ...] | None:
    """The Apache version the host's release ships (platforms.APACHE_VERSION_BY_RELEASE), else None.
    The release decides, not the installed package: a first deploy (Apache not installed yet) and
    every later one plan the same files, also on a release missing from the table."""
    release = (facts.os.get("ID", ""), facts.os.get("VERSION_ID", "").split(".")[0])
    return APACHE_VERSION_BY_RELEASE.get(release)


def python_version(facts: Facts) -> tuple[int, ...] | None:
    """The host's python3, or, when it has none yet, the one its release ships
    (platforms.PYTHON_VERSION_BY_RELEASE), which the same run installs; else None."""
    if facts.python is not None:
        return facts.python
    release = (facts.os.get("ID", ""), facts.os.get("VERSION_ID", "").split(".")[0])
    return PYTHON_VERSION_BY_RELEASE.get(release)


def parse_python_version(text: str) -> tuple[int, ...] | None:
    m = re.search(r"Python (\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g) for g in m.groups() if g is not None) if m else None


def parse_packages(lines: list[str]) -> dict[str, str]:
    """dpkg-query or rpm -q lines of "name<TAB>state<TAB>version"; rpm's
    "package X is not installed" lines and Debian's half-removed states count as absent."""
    installed = {}
    for line in lines:
        parts = line.split("\t")
        if len(parts) == 3 and parts[1] == "installed":
            installed[parts[0]] = parts[2]
    return installed


def parse_units(text: str, names: list[str] | None = None) -> dict[str, dict[str, str]]:
    """``systemctl show`` blocks, keyed by Id, or else by the names asked for, in order."""
    units = {}
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    for i, block in enumerate(blocks):
        props = {}
        for line in block.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                props[key] = value
        name = props.get("Id") or (names[i] if names and i < len(names) else None)
        if name:
            units[name] = props
    return units


def parse_files(lines: list[str]) -> dict[str, FileState]:
    files = {}
    for line in lines:
        parts = line.split(" ")
        if len(parts) < 2:
            continue
        path, kind = parts[0], parts[1]
        if kind == "absent":
            files[path] = ABSENT
        elif kind == "link":
            files[path] = FileState("link", target=" ".join(parts[6:]))
        elif kind in ("file", "directory") and len(parts) >= 6:
            sha = parts[5] if kind == "file" else ""
            files[path] = FileState(kind, mode=parts[2], owner=parts[3], group=parts[4], sha256=sha)
    return files


def parse_orphans(lines: list[str]) -> list[Orphan]:
    """"run NAME STATUS" lines, each followed by its "  step"/"  done" lines."""
    found: list[Orphan] = []
    for line in lines:
        words = line.split()
        if line.startswith("run ") and len(words) == 3:
            found.append(Orphan(words[1], words[2], ""))
        elif line.startswith("  ") and found and words:
            last = found[-1]
            found[-1] = Orphan(last.run, last.status, last.log + MARK + line.strip() + "\n")
    return found


def parse_mods_enabled(lines: list[str]) -> set[str]:
    """Debian: module names from /etc/apache2/mods-enabled/*.load."""
    return {line.strip()[:-5] for line in lines if line.strip().endswith(".load")}


def parse_loadmodules(lines: list[str]) -> dict[str, str]:
    """RedHat: ``grep -H LoadModule conf.modules.d/*.conf`` -> {module id: file that loads it}."""
    loaded = {}
    for line in lines:
        path, _, directive = line.partition(":")
        words = directive.split()
        if len(words) >= 3 and words[0] == "LoadModule":
            loaded.setdefault(words[1], path)
    return loaded


def parse_selinux(lines: list[str]) -> tuple[str | None, dict[str, bool]]:
    """``getenforce`` then ``getsebool`` lines ("httpd_can_network_connect --> off")."""
    mode = None
    bools = {}
    for line in lines:
        line = line.strip()
        if line in ("Enforcing", "Permissive", "Disabled"):
            mode = line
        m = re.match(r"^(\w+)\s+-->\s+(on|off)$", line)
        if m:
            bools[m.group(1)] = m.group(2) == "on"
    return mode, bools


def parse_firewalld(lines: list[str]) -> tuple[bool, set[str], set[str]]:
    """``firewall-cmd --state`` ("running"), ``--list-services`` (space-separated), then a
    "ports ..." line from ``--list-ports``, then ``--list-rich-rules`` (one "rule ..." a line)."""
    if not lines or lines[0].strip() != "running":
        return False, set(), set()
    services, ports = set(), set()
    for line in lines[1:]:
        if line.startswith("rule "):
            continue
        if line.startswith("ports"):
            ports.update(line.split()[1:])
        else:
            services.update(line.split())
    return True, services, ports


def parse_apache_modules(text: str) -> set[str]:
    """``httpd -M`` / ``apache2ctl -M`` output -> module ids. Warnings may come first."""
    return set(re.findall(r"^\s*(\w+_module) \((?:static|shared)\)\s*$", text, re.M))
