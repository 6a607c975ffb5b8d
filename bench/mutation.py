"""`invoke mutate`: mutation testing of the pure modules with mutmut, against the unit tests only.

The top half is pure: scores from mutmut's exit codes, the equivalent mutants, docs/quality.md.
The runner below it runs mutmut on one file at a time (niced, 1 worker by default: the machine is
shared), keeps each module's latest result in docs/mutation.json, and renders docs/quality.md from
that file, never by hand. Each mutant runs only the unit tests that call its function (mutmut's
stats); a run stopped by its time budget records the rest as not checked.
``--named`` applies the audit's twelve one-line mutations by hand and records the unit test
that fails on each.
"""
from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provision.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "mutation.json"
REPORT = ROOT / "docs" / "quality.md"


def pure_modules(setup_cfg: str) -> tuple[str, ...]:
    """The modules mutation testing covers, from setup.cfg's [mutmut] only_mutate (the one list):
    `provision/inventory/*.py` is the package `inventory`, `provision/roles/proxy.py` is `roles.proxy`."""
    config = configparser.ConfigParser()
    config.read_string(setup_cfg)
    names = []
    for entry in config["mutmut"]["only_mutate"].split():
        path = entry.removeprefix("provision/")
        path = path.removesuffix("/*.py") if path.endswith("/*.py") else path.removesuffix(".py")
        names.append(path.replace("/", "."))
    return tuple(names)


# A name is a module or a package (inventory, sites): a package's files are run one after another
# and scored together; `--module inventory.validate` runs one file of a package.
PURE_MODULES = pure_modules((ROOT / "setup.cfg").read_text())
# Modules with network or CLI code beside their pure part: only these functions are mutated and scored.
PURE_FUNCTIONS = {
    "ops.status": ("roles_of", "script", "interpret", "_deploy_text", "_plan_text", "plain_lines", "failed",
                   "exit_code"),
    "balancer.drain": ("member_urls", "balanced", "ProxyOutcome.drained_before", "ProxyOutcome.status"),
    "ops.adhoc": ("script", "_tail", "show", "_word", "report_all", "exit_code", "HostRun.ok", "HostRun.status"),
    "ops.facts_cmd": ("as_setup",),
}
TARGET = 0.90
# mutmut's exit codes (mutmut/stats.py): 1 and 3 are kills, timeouts count as detected too.
KILLED_CODES = {1, 3, 24, -24, 36, 152, 255, 37}
SURVIVED_CODES = {0}
NO_TESTS_CODES = {5, 33}

# Mutants no test can tell apart from the original: mutant name -> (text on the mutated line, why).
# The text guards against mutmut renumbering: an entry whose text no longer matches is ignored.
_SETTING = "setting() reads the run's options only for proxy_mode, never for tls or lbmethod"
_DEBIAN_MODULES = "on Debian modules() reads the platform only to drop RedHat's packaged ssl module"
_PENDING_CHAIN = ("a parent of a pending INI group has its own [parent:children] section, which resolved it "
                  "already: the chain step never finds a pending parent")
EQUIVALENT: dict[str, tuple[str, str]] = {
    "provision.roles.proxy.x_resources__mutmut_50": ('setting(host, None, "tls")', _SETTING),
    "provision.roles.proxy.x_resources__mutmut_76": ("modules(host, None, platform)", _SETTING),
    "provision.roles.proxy.x_resources__mutmut_93": ("modules(host, None, platform)", _SETTING),
    "provision.roles.proxy.x_resources__mutmut_77": ("modules(host, options, None)", _DEBIAN_MODULES),
    "provision.roles.proxy.x_resources__mutmut_79": ("modules(host, platform)", _DEBIAN_MODULES + "; " + _SETTING),
    "provision.roles.proxy.x_resources__mutmut_80": ("modules(host, options, )", _DEBIAN_MODULES),
    "provision.roles.proxy.x_resources__mutmut_113": ('SELinuxBoolean("httpd_can_network_connect", )',
                                                      "True is SELinuxBoolean's default value"),
    "provision.inventory.ini.x__add_pending__mutmut_8": ("break", _PENDING_CHAIN),
    "provision.inventory.ini.x__add_pending__mutmut_6": ("pending.pop(name, )", _PENDING_CHAIN),
    "provision.inventory.ini.x__add_pending__mutmut_13": ("data.add_child(parent, name, None)",
                                                         "the place only names a group that is its own child, "
                                                         "which a pending group never is"),
    "provision.roles.proxy.x_resources__mutmut_151": ("routes(host, None, inventory, options)",
                                                      "routes() takes the platform but does not read it"),
}

# Kinds of equivalent mutants, by module: a regular expression on the mutated (added) line, and why.
EQUIVALENT_PATTERNS: dict[str, list[tuple[str, str]]] = {
    "apply": [
        (r"if \(fresh\) or True else", "with nothing to forget the line is `rm -f` with no operand, which does nothing"),
    ],
    "facts": [
        (r'"export lc_all=c"', "no command of the facts script prints what the parsers read differently by locale"),
        (r'parse_firewalld\(s\.get\("firewalld", (None)?\)\)', "parse_firewalld treats no lines and None alike"),
        (r'os_release\.get\("ID", (None)?\)', "a missing ID is refused whether it reads as '' or None"),
        (r'os_release\.get\("(VERSION_ID|ID_LIKE)", "XXXX"\)',
         "an unknown release or family name is refused the same way as an empty one"),
        (r'parse_python_version\("XX\\nXX"\.join', "the version is searched for anywhere in the section's text"),
    ],
    "inventory": [
        (r'pending\[parent\]\[("XXstateXX"|"STATE")\]|pending\[parent\]\["state"\] != "children"|'
         r'pending\[parent\]\["state"\] == "(XXchildrenXX|CHILDREN)"|todo\.append\(None\)', _PENDING_CHAIN),
        (r"width = 1$", "zfill(1) leaves every number's text as it is"),
        (r"ensure_ascii=None\)", "None is false, as False is"),
        (r'pending\[group\] = \{"line": where, "state": "vars", ("XXparentsXX"|"PARENTS"): \[\]\}',
         "a group named in [g:vars] is in the graph already, so [p:children] adds it directly: its entry "
         "never gets parents"),
        (r"_add_pending\(data, group, pending, None\)", "the place only names a group that is its own child, "
                                                        "which a pending group never is"),
        (r"letters\.rindex\(", "each letter occurs once in ascii_letters"),
        (r"\(last - first\) (/ step >|// step >=) MAX_EXPANSION",
         "a range of 100,001 names is refused by expand() with the same message"),
        (r'warnings\.simplefilter\("ignore", \)', "only literal_eval runs inside the block: ignoring every "
                                                    "warning there, not only SyntaxWarning, returns the same"),
        (r"^\s*break\s+# a plural is a different variable",
         "no name is the plural of one variable we read and within two edits of a later one"),
        (r"prev2, prev = None, list\(range\(len\(b\) \+ 2\)\)", "the extra last cell is never read"),
        (r"cur = \[i\] \+ \[1\] \* len\(b\)", "each cell is written before it is read"),
        (r"if prev2 is not None and i >= 1 and", "prev2 is None while i is 1"),
        (r"visit\(p, (None|depth [-+] \d)\)|visit\(g, 1\)", "visit()'s depth is never read"),
        (r'if "(XXallXX|ALL)" in order:|if "all" not in order:',
         "'all' is every group's first ancestor, so it is already first in the order"),
        (r"isinstance\(port, bool\) and not isinstance\(port, int\)", "a bool is 0 or 1: outside 1024-65535 anyway"),
        (r"if \(not Path\(ssh_config\)\.is_absolute\(\)\) (and False|or True)",
         "an absolute path joined to the inventory's folder is itself"),
    ],
    "report": [
        (r'if \(text\) or True else ""', "indenting no lines gives the empty string too"),
    ],
    "tls": [
        (r"(content_commitment|key_encipherment|data_encipherment|key_agreement|encipher_only|decipher_only)=None",
         "a key usage of None is encoded as the cleared bit, like False"),
        (r"key_size=2049", "OpenSSL makes a 2048-bit RSA key when asked for 2049 bits"),
        (r'path\.name \+ "(XX\.tmpXX|\.TMP)"', "the temporary name lives only until the rename"),
        (r"os\.O_TRUNC, \)", "the chmod that follows sets the mode before the rename"),
        (r"if \(p\.is_absolute\(\)\) and False else", "an absolute path joined to the inventory's folder is "
                                                      "itself"),
    ],
    "sites": [
        (r'_route\((None|"XXXX"|""), (None|"XXXX"|""), r, host\.vars\["pools"\]\)',
         "build() reads routes validate() has already accepted: the place and field only name an error that "
         "cannot happen there"),
        (r'key = r\.path\.rstrip\("/"\) or "XX/XX"', "'/' is the only path that strips to nothing, so any "
                                                       "stand-in for it stays unique"),
    ],
    "ops.status": [
        (r'record\.get\("would_change", (None)?\)', "a record without would_change is up to date either way"),
    ],
    "ops.adhoc": [
        (r"^\s*print\(file=stream\)$", "print() and print('') write the same empty line"),
    ],
    "roles.proxy": [
        (r"setting\(host, None, ['\"](?!proxy_mode)", _SETTING),
        (r"modules\(host, None, platform\)", _SETTING),
        (r"render\(\"proxy-vhost\.conf\.j2\", mode=", "the vhost template does not read mode"),
        (r'getattr\(options, "(tls|mode)", \)', "the engine's Options always has tls and mode"),
        (r'host\.vars\.get\("proxy_extra_directives", (None)?\)', "the template treats no list and None alike"),
        (r'facts\.os\.get\("VERSION_ID", "XXXX"\)', "an unknown release is not CentOS 7, like a missing one"),
    ],
}

# The audit's one-line mutations (issue "Tests that catch regressions"): what, file, old text, new text.
NAMED = [
    ("dropped range check on balancer_timeout", "provision/inventory/validate.py",
     '("balancer_retry", "balancer_timeout", "balancer_connectiontimeout")',
     '("balancer_retry", "balancer_connectiontimeout")'),
    ("a bool accepted as an int", "provision/inventory/validate.py",
     "if want is int and isinstance(value, bool) or not", "if not"),
    ("File group drift ignored", "provision/resources.py",
     "if (have.owner, have.group) != (self.owner, self.group):", "if have.owner != self.owner:"),
    ("Directory owner drift ignored", "provision/resources.py",
     "if (have.mode, have.owner, have.group) == (self.mode, self.owner, self.group):",
     "if (have.mode, have.group) == (self.mode, self.group):"),
    ("inverted test in Absent", "provision/resources.py",
     "self.installed_by not in facts.packages", "self.installed_by in facts.packages"),
    ("failed configtest deletes earlier runs' pending records", "provision/apply.py",
     "fresh = [n for n in notified if n not in pending_before]", "fresh = list(notified)"),
    ("owner and group swapped in the facts parser", "provision/facts.py",
     "owner=parts[3], group=parts[4]", "owner=parts[4], group=parts[3]"),
    ("the last LoadModule file wins", "provision/facts.py",
     "loaded.setdefault(words[1], path)", "loaded[words[1]] = path"),
    ("timeout and connectiontimeout swapped in BalancerMember", "files/proxy-routes.inc.j2",
     "connectiontimeout={{ pool.connectiontimeout }} timeout={{ pool.timeout }}{% if m.loadfactor %}",
     "connectiontimeout={{ pool.timeout }} timeout={{ pool.connectiontimeout }}{% if m.loadfactor %}"),
    ("the inventory's server_name ignored", "provision/roles/proxy.py",
     'defaults["server_name"] = host.vars.get("server_name", host.name)', 'defaults["server_name"] = host.name'),
    ("the lbmethod module not enabled", "provision/roles/proxy.py",
     "return {**PROXY_MODULES, **extra, **FORWARDED_MODULES}", "return {**PROXY_MODULES, **FORWARDED_MODULES}"),
    ("the retry default changed", "provision/roles/proxy.py", '"balancer_retry": 5,', '"balancer_retry": 10,'),
]


# --- pure: scores and the report ----------------------------------------------------------------

def changed_lines(diff: str) -> list[str]:
    """The removed and added lines of a unified diff, without its file headers."""
    return [line for line in diff.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def is_equivalent(name: str, diff: str, equivalent: dict, patterns=()) -> str | None:
    """The reason a mutant is equivalent: it is listed by name and its added line still holds the
    listed text, or its added line matches one of the module's patterns."""
    added = [line[1:] for line in changed_lines(diff) if line.startswith("+")]
    entry = equivalent.get(name)
    if entry is not None and any(entry[0] in line for line in added):
        return entry[1]
    for pattern, reason in patterns:
        if added and all(re.search(pattern, line) for line in added):
            return reason
    return None


def score(exit_codes: dict, diffs: dict, equivalent: dict, patterns=()) -> dict:
    """A module's result: counts, survivors with their diffs, equivalent mutants with reasons."""
    killed = [n for n, c in exit_codes.items() if c in KILLED_CODES]
    unchecked = [n for n, c in exit_codes.items() if c is None]
    eq, survived = [], []
    for name in sorted(n for n, c in exit_codes.items() if c not in KILLED_CODES and c is not None):
        reason = is_equivalent(name, diffs.get(name, ""), equivalent, patterns)
        if reason:
            eq.append({"name": name, "reason": reason, "diff": changed_lines(diffs.get(name, ""))})
        else:
            survived.append({"name": name, "status": "no tests" if exit_codes[name] in NO_TESTS_CODES else "survived",
                             "diff": changed_lines(diffs.get(name, ""))})
    counted = len(exit_codes) - len(eq) - len(unchecked)
    return {"mutants": len(exit_codes), "killed": len(killed), "survived": survived, "equivalent": eq,
            "unchecked": len(unchecked), "score": len(killed) / counted if counted else None}


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def markdown(results: dict) -> str:
    """docs/quality.md from docs/mutation.json's content."""
    modules = results.get("modules", {})
    out = ["# Mutation testing", "",
           "Generated by `invoke mutate` from docs/mutation.json; do not edit by hand.",
           f"mutmut mutates the pure modules one at a time and runs the unit tests (tests/unit) on each mutant. "
           f"Target: every pure module kills at least {TARGET:.0%} of its mutants, equivalent mutants set aside.",
           "Each mutant runs only the unit tests that call its function; some slow tests are left out "
           "(setup.cfg, [mutmut] pytest_add_cli_args). Modules with network code score only their pure functions "
           "(PURE_FUNCTIONS in bench/mutation.py).",
           "Not checked: mutants a run's time budget stopped before; the score counts only those checked.",
           "", "| module | mutants | killed | survived | equivalent | not checked | score | target | run | minutes "
           "| s/mutant |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in PURE_MODULES:
        r = modules.get(m)
        if r is None:
            out.append(f"| {m} | - | - | - | - | - | - | not run | - | - | - |")
            continue
        ok = "n/a: data only" if not r["mutants"] else "-" if r["score"] is None else \
            ("pass" if r["score"] >= TARGET else "FAIL")
        out.append(f"| {m} | {r['mutants']} | {r['killed']} | {len(r['survived'])} | {len(r['equivalent'])} | "
                   f"{r.get('unchecked', 0)} | {_pct(r['score'])} | {ok} | {r.get('date', '-')} | "
                   f"{r.get('minutes', round(r['seconds'] / 60, 1) if 'seconds' in r else '-')} | "
                   f"{r.get('seconds_per_mutant') or '-'} |")
    named = results.get("named")
    if named:
        out += ["", "## The audit's twelve mutations", "",
                f"Applied one at a time by `invoke mutate --named` ({named['date']}); each must make a unit test fail.",
                "", "| mutation | file | unit test that fails |", "|---|---|---|"]
        for row in named["rows"]:
            out.append(f"| {row['mutation']} | {row['file']} | "
                       f"{'`' + row['killed_by'] + '`' if row['killed_by'] else '**survived**'} |")
    for m in PURE_MODULES:
        r = modules.get(m)
        if not r or not (r["survived"] or r["equivalent"]):
            continue
        out += ["", f"## {m}"]
        if r["equivalent"]:
            out += ["", "Equivalent (no test can tell them apart):", ""]
            out += [f"- `{e['name']}`: {e['reason']}" for e in r["equivalent"]]
        if r["survived"]:
            out += ["", "Survivors:", ""]
            for s in r["survived"]:
                shown = " / ".join(line.strip() for line in s["diff"] if line.startswith("+"))[:160]
                out.append(f"- `{s['name']}` ({s['status']}): `{shown.replace('`', chr(39))}`")
    return "\n".join(out) + "\n"


# --- runner -------------------------------------------------------------------------------------

def module_files(module: str) -> list[Path]:
    """The source files of a pure module, relative to the checkout: one file, or a package's files."""
    base = Path("provision") / module.replace(".", "/")
    if (ROOT / base).is_dir():
        return sorted(p.relative_to(ROOT) for p in (ROOT / base).glob("*.py"))
    return [base.with_suffix(".py")]


def module_of(name: str) -> tuple[str, Path | None]:
    """A --module value -> (the pure module it scores into, the one file to run or None for all).
    `inventory.validate` is one file of the `inventory` package."""
    if name in PURE_MODULES:
        return name, None
    package, _, _ = name.rpartition(".")
    if package in PURE_MODULES and (ROOT / "provision" / name.replace(".", "/")).with_suffix(".py").is_file():
        return package, Path("provision") / (name.replace(".", "/") + ".py")
    raise UserError(f"--module: {name!r} is not a pure module ({', '.join(PURE_MODULES)}) nor one file of a "
                    f"pure package (e.g. inventory.validate)")


def source_of(mutant: str) -> Path:
    """`provision.inventory.validate.x_check__mutmut_3` -> provision/inventory/validate.py
    (a package's own __init__.py is named without it: `provision.inventory.x_load__mutmut_1`)."""
    dotted = mutant.split(".x")[0]
    path = Path(*dotted.split("."))
    return path / "__init__.py" if (ROOT / path).is_dir() else path.with_suffix(".py")


def function_of(mutant: str) -> str:
    """`provision.ops.status.x_interpret__mutmut_3` -> interpret; a method -> Class.method."""
    mangled = mutant.partition("__mutmut_")[0].rpartition(".")[2]
    if mangled.startswith("x\u01c1"):
        return ".".join(mangled[2:].split("\u01c1"))
    return mangled.removeprefix("x_")


def mutant_pattern(path: Path) -> str:
    """mutmut's name pattern for every mutant of one file."""
    dotted = ".".join(path.with_suffix("").parts)
    return dotted.removesuffix(".__init__") + ".x*"


def _scored(module: str, names) -> list:
    wanted = PURE_FUNCTIONS.get(module)
    return [n for n in names if wanted is None or function_of(n) in wanted]


def _exit_codes(module: str) -> dict | None:
    """mutmut's recorded exit code per mutant of the module (all its files), or None if none ran;
    None for a mutant that was not checked. Only the listed functions of a mixed module count."""
    metas = [ROOT / "mutants" / f"{f}.meta" for f in module_files(module)]
    found = [m for m in metas if m.exists()]
    if not found:
        return None
    codes: dict = {}
    for meta in found:
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    return {n: codes[n] for n in _scored(module, codes)}


def _durations(module: str) -> dict:
    metas = [ROOT / "mutants" / f"{f}.meta" for f in module_files(module)]
    found: dict = {}
    for meta in metas:
        if meta.exists():
            found.update(json.loads(meta.read_text()).get("durations_by_key", {}))
    return {n: found[n] for n in _scored(module, found)}


def _diffs(names: list[str]) -> dict:
    from mutmut.mutation.diff_apply import get_diff_for_mutant   # mutmut: only where a run's diffs are read
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return {n: get_diff_for_mutant(n, path=source_of(n)) for n in names}
    finally:
        os.chdir(cwd)


def _result(module: str, codes: dict) -> dict:
    todo = [n for n, c in codes.items() if c not in KILLED_CODES and c is not None]
    result = score(codes, _diffs(todo), EQUIVALENT, EQUIVALENT_PATTERNS.get(module, ()))
    durations = [d for n, d in _durations(module).items() if codes.get(n) is not None]
    result["seconds_per_mutant"] = round(sum(durations) / len(durations), 2) if durations else None
    return result


def rescore(module: str, log=print) -> dict:
    """The module's result again from mutmut's recorded exit codes (mutants/), with the current
    list of equivalent mutants; mutmut is not run."""
    codes = _exit_codes(module)
    if codes is None:
        raise UserError(f"--rescored: no mutmut results for {module} under mutants/; run `invoke mutate --module {module}`")
    result = _result(module, codes)
    previous = load_results().get("modules", {}).get(module, {})
    for key in ("date", "minutes"):
        if key in previous:
            result[key] = previous[key]
    result.setdefault("date", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    log(f"{module}: rescored from the run of {result['date']}")
    return result


def _mutmut(patterns: list[str], workers: int, deadline: float | None, log=print) -> tuple[bool, str]:
    """One `mutmut run` over the named mutants, its output followed in mutants/run.log; on the
    deadline it is stopped (mutmut has saved each verdict as it came) and the rest stays not checked."""
    argv = ["nice", "-n", "10", sys.executable, "-m", "mutmut", "run", "--max-children", str(workers), *patterns]
    (ROOT / "mutants").mkdir(exist_ok=True)
    with open(ROOT / "mutants" / "run.log", "w") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=None if deadline is None else max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log("  time budget spent: stopping mutmut, the rest is recorded as not checked")
            proc.terminate()        # mutmut's own Ctrl-C handling waits for its fork server
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        stopped = proc.returncode != 0 and deadline is not None and time.monotonic() >= deadline
    output = (ROOT / "mutants" / "run.log").read_text(errors="replace")
    if proc.returncode != 0 and not stopped:
        raise RuntimeError(f"mutmut failed (exit {proc.returncode}), see mutants/run.log:\n{output[-2000:]}")
    return stopped, output


def _patterns(module: str, files: list[Path], survivors_only: bool) -> list[str]:
    if survivors_only:
        codes = _exit_codes(module) or {}
        return sorted(n for n, c in codes.items()
                      if c not in KILLED_CODES and source_of(n) in files)
    if module in PURE_FUNCTIONS:
        dotted = ".".join(files[0].with_suffix("").parts)
        return [f"{dotted}.x{'_' + f if '.' not in f else chr(0x1c1) + f.replace('.', chr(0x1c1))}*"
                for f in PURE_FUNCTIONS[module]]
    return [mutant_pattern(f) for f in files]


def run_modules(targets: list, workers: int = 1, minutes: float | None = None, survivors_only: bool = False,
                log=print) -> dict:
    """mutmut on the modules' files (or one file of a package) in ONE run, so its start-up and clean
    test run are paid once; then each module's score over all its files' recorded results.
    A module's minutes: the run's wall time, shared out by the seconds its own mutants took."""
    t0 = time.monotonic()
    deadline = None if minutes is None else t0 + 60 * minutes
    patterns = []
    for module, only in targets:
        patterns += _patterns(module, [only] if only else module_files(module), survivors_only)
    if patterns:
        log(f"mutmut on {', '.join(m if only is None else str(only) for m, only in targets)}" +
            (f" ({len(patterns)} survivors and unchecked again)" if survivors_only else ""))
        _mutmut(patterns, workers, deadline, log)
    spent = (time.monotonic() - t0) / 60
    log(f"  {spent:.1f} min")
    previous = load_results().get("modules", {})
    results, busy = {}, {}
    for module, only in targets:
        codes = _exit_codes(module)
        if not codes:
            log(f"  {module} has no function to mutate (data only)")
            results[module] = {"mutants": 0, "killed": 0, "survived": [], "equivalent": [], "unchecked": 0,
                               "score": None, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                               "minutes": 0}
            continue
        results[module] = _result(module, codes)
        results[module]["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        busy[module] = sum(_durations(module).values()) or 1
    for module, only in targets:
        if module in busy:
            share = spent * busy[module] / sum(busy.values())
            earlier = previous.get(module, {}).get("minutes", 0) if only or survivors_only else 0
            results[module]["minutes"] = round(share + earlier, 1)
    return results


def _first_failure(output: str) -> str | None:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" ", 1)[1].split(" - ")[0].strip()
    return None


def _copy_of_the_checkout(dest: Path) -> Path:
    """The checkout's tracked files (as they are now) in ``dest``, where a mutation can be applied."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest


def run_named(log=print) -> dict:
    """Apply each named mutation to a copy of the checkout and run the unit tests there until one
    fails (the test that failed last time first: one test instead of the suite); the checkout
    itself is never changed."""
    before = {r["mutation"]: r.get("killed_by") for r in load_results().get("named", {}).get("rows", [])}
    rows = []
    for what, rel, old, new in NAMED:
        text = (ROOT / rel).read_text()
        if text.count(old) != 1:
            rows.append({"mutation": what, "file": rel, "killed_by": None, "note": "code moved: text not found"})
            log(f"  {what}: the code moved, mutation not applied")
            continue
        with tempfile.TemporaryDirectory(prefix="named-mutant-") as tmp:
            copy = _copy_of_the_checkout(Path(tmp))
            (copy / rel).write_text(text.replace(old, new))
            killer = None
            for selection in ([before[what]] if before.get(what) else []) + ["tests/unit"]:
                proc = subprocess.run(["nice", "-n", "10", sys.executable, "-m", "pytest", "-q", "-x", "--tb=no",
                                       "-p", "no:cacheprovider", selection], cwd=copy, capture_output=True,
                                      text=True, env={**os.environ, "PYTHONPATH": str(copy)})
                killer = _first_failure(proc.stdout) if proc.returncode in (1, 2) else None
                if killer:
                    break
        rows.append({"mutation": what, "file": rel, "killed_by": killer})
        log(f"  {what}: {'killed by ' + killer if killer else 'SURVIVED'}")
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows}


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {"modules": {}}


def print_summary(results: dict, log=print) -> None:
    for m in PURE_MODULES:
        r = results["modules"].get(m)
        if r:
            log(f"{m:16} {r['mutants']:5} mutants  {r['killed']:5} killed  {len(r['survived']):4} survived  "
                f"{len(r['equivalent']):3} equivalent  {_pct(r['score']):>6}")
            for s in r["survived"]:
                log(f"    survivor {s['name']}: {' / '.join(x.strip() for x in s['diff'])[:150]}")


def _save(key: str, name: str | None, value: dict) -> dict:
    """Re-read docs/mutation.json, set one result in it, write it and docs/quality.md: runs of
    different modules (or --named) at the same time never drop each other's results."""
    results = load_results()
    if name is None:
        results[key] = value
    else:
        results.setdefault(key, {})[name] = value
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    REPORT.write_text(markdown(results))
    return results


def dotted(name: str) -> str:
    """A module named as a path (`provision/sites`, `provision/inventory/validate.py`) -> `sites`,
    `inventory.validate`; a dotted name stays as it is."""
    path = name.rstrip("/").removeprefix("./").removeprefix("provision/").removesuffix(".py")
    return path.replace("/", ".")


def targets_of(text: str) -> list:
    """--module: a pure module, one file of a pure package, a prefix (`ops`: every ops.* module),
    or several of these, comma-separated; each dotted or as a path (`provision/sites`)."""
    found = []
    for name in filter(None, (dotted(n.strip()) for n in text.split(","))):
        group = [m for m in PURE_MODULES if m.startswith(name + ".")] if name not in PURE_MODULES else []
        found += [(m, None) for m in group] if group else [module_of(name)]
    return found


def main(module: str | None = None, named: bool = False, rescored: bool = False, workers: int = 1,
         minutes: float | None = None, survivors: bool = False, log=print) -> int:
    todo = targets_of(module) if module is not None else ([] if named else [(m, None) for m in PURE_MODULES])
    results = load_results()
    if named:
        results = _save("named", None, run_named(log))
    if rescored:
        for m, _ in todo:
            results = _save("modules", m, rescore(m, log))
    elif todo:
        for m, result in run_modules(todo, workers=workers, minutes=minutes, survivors_only=survivors,
                                     log=log).items():
            results = _save("modules", m, result)
    REPORT.write_text(markdown(results))
    print_summary(results, log)
    log(f"wrote {REPORT.relative_to(ROOT)} and {RESULTS.relative_to(ROOT)}")
    low = [m for m, r in results["modules"].items() if r["score"] is not None and r["score"] < TARGET]
    missed = [r["mutation"] for r in results.get("named", {}).get("rows", []) if not r["killed_by"]]
    return 1 if low or missed else 0
