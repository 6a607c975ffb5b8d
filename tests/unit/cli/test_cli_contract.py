"""The command line's contract, command by command, from its table: --help, a bad whole number, a
missing inventory, a --json path that cannot be written, -K without a terminal. Each gives its
help or one line on stderr, exit 1, no traceback, and nothing connects."""
import dataclasses
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from provision.cli import flags
from provision.cli.commands import COMMANDS
from provision.cli.program import build, friendly, help_first
from provision.inventory import PROXY_MODES

ROOT = Path(__file__).resolve().parents[3]
NAMES = [c.name for c in COMMANDS]


def provision(capsys, *argv) -> tuple[int, str, str]:
    """One in-process run of the `provision` program: (exit code, stdout, stderr)."""
    code = 0
    try:
        build().run(["provision", *argv])
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def positional(command) -> list[str]:
    return ["merge"] if command.positional == ("action",) else ["web1"] if command.positional else []


def cases():
    """(command, case, argv, what stderr must say) for every command and every case that applies."""
    for c in COMMANDS:
        names = {f.name for f in c.arguments()}
        base = [c.name, *positional(c)]
        after = ["--", "true"] if c.remainder else []
        if "inventory" in names:
            yield c.name, "missing inventory", base + ["-i", "/nonexistent/hosts.yml"] + after, \
                "/nonexistent/hosts.yml: no such inventory file"
        else:       # report merge reads --json files, no inventory
            after = ["--", "/nonexistent/a.json"]
            yield c.name, "missing file", base + after, "/nonexistent/a.json: no such file"
        for f in c.arguments():
            if f.kind == "int":
                low = f.minimum if f.minimum is not None else 1
                yield c.name, f"bad {f.long}", base + [f.long, "abc"] + after, f"{f.long} must be a whole number"
                yield c.name, f"{f.long} {low - 1}", base + [f.long, str(low - 1)] + after, \
                    f"{f.long} must be {low} or more"
        if "json" in names:
            yield c.name, "bad --json", base + ["--json", "/nonexistent/x.json"] + after, \
                "--json /nonexistent/x.json: folder /nonexistent does not exist"
        if "ask_become_pass" in names:
            yield c.name, "-K without a terminal", base + ["-K"] + after, "-K/--ask-become-pass needs a terminal"


CASES = list(cases())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("spelling", ["--help", "-h"])
def test_every_command_has_help_even_with_a_positional_argument(capsys, name, spelling):
    code, out, err = provision(capsys, name, spelling)
    assert code == 0 and err == ""
    assert out.startswith(f"Usage: provision {name} [options]") and "Options:" in out
    command = next(c for c in COMMANDS if c.name == name)
    if "inventory" in {f.name for f in command.arguments()}:        # all but report merge
        assert "-i PATH, --inventory=PATH" in out


@pytest.mark.parametrize("name,case,argv,says", CASES, ids=[f"{n}: {c}" for n, c, _, _ in CASES])
def test_bad_input_is_one_line_on_stderr_and_exit_1(capsys, monkeypatch, name, case, argv, says):
    monkeypatch.setattr("provision.transport.HostConnection.open", _never_connect)
    code, out, err = provision(capsys, *argv)
    assert code == 1, (out, err)
    assert err.count("\n") == 1 and err.startswith("error: ") and says in err, err
    assert "Traceback" not in out + err


def test_the_table_covers_every_case_the_issue_names():
    covered = {(n, c.split(" ")[0]) for n, c, _, _ in CASES}
    for name in NAMES:
        assert (name, "missing") in covered
    for name in ("deploy", "verify", "status", "drain", "undrain", "run", "facts", "tls.renew"):
        assert (name, "bad") in covered and any(n == name and c.startswith("bad --") and "json" not in c
                                                 for n, c, _, _ in CASES), name
    for name in ("deploy", "status", "drain", "undrain", "run", "facts", "rollback", "tls.renew"):
        assert (name, "-K") in covered


def _never_connect(self):
    raise AssertionError("a connection was opened")


def test_dry_and_other_habits_get_a_suggestion(capsys):
    assert provision(capsys, "deploy", "--dry")[1:] == ("", "error: no such option '--dry'; did you mean --check?\n")
    code, _, err = provision(capsys, "--dry", "deploy")
    assert code == 1 and err == "error: no such option '--dry'; did you mean --check?\n"
    assert provision(capsys, "deploy", "--limt", "web1")[2] == \
        "error: no such option '--limt' for deploy; did you mean --limit?\n"
    assert provision(capsys, "deploy", "--echo")[2] == "error: no such option '--echo'; did you mean -vvv?\n"
    for core in ("--hide", "--pty", "--warn-only", "--collection", "--search-root"):
        code, _, err = provision(capsys, "deploy", core, "x")
        assert code == 1 and err.startswith(f"error: no such option '{core}'"), err


def test_version_and_the_command_list(capsys):
    code, out, _ = provision(capsys, "--version")
    assert code == 0 and out.startswith("provision ")
    code, out, _ = provision(capsys)
    assert code == 0 and all(f"  {n} " in out for n in NAMES) and "Exit codes: 0 ok" in out
    assert "--dry" not in out and "--echo" not in out


def test_help_is_found_wherever_it_is_typed():
    assert help_first(["provision", "drain", "--help"]) == ["provision", "--help", "drain"]
    assert help_first(["provision", "-i", "x", "facts", "web1", "-h"]) == ["provision", "--help", "facts"]
    assert help_first(["provision", "run", "--", "grep", "--help"]) == ["provision", "run", "--", "grep", "--help"]


def test_parse_errors_in_words():
    from invoke.exceptions import ParseError
    from invoke.parser import ParserContext
    context = ParserContext(name="deploy")
    assert friendly(ParseError("Flag '--forks' needed value and was not given one!", context)) == \
        "--forks needs a value for deploy"
    assert friendly(ParseError("No idea what 'web9' is!", context)) == \
        "'web9' is not a command or an option for deploy (provision deploy --help lists them)"


def test_the_flag_vocabulary_is_one_letter_per_meaning():
    shorts = [f.short for f in flags.FLAGS.values() if f.short]
    assert len(shorts) == len(set(shorts))
    assert {f.short: f.name for f in flags.FLAGS.values() if f.short} == {
        "i": "inventory", "l": "limit", "C": "check", "D": "diff", "e": "extra_vars", "f": "forks",
        "v": "verbose", "K": "ask_become_pass", "b": "become"}
    assert flags.MODES == PROXY_MODES
    for c in COMMANDS:       # every command that reads an inventory (report merge reads --json files)
        assert "inventory" in c.flags or c.name == "report", c.name


def test_verbose_counts_and_inventory_and_extra_vars_repeat(capsys, monkeypatch):
    seen = {}

    def record(a):
        seen.update(verbose=a.verbose, inventory=a.inventory, extra_vars=a.extra_vars, forks=a.forks, check=a.check)
        return 0
    table = [dataclasses.replace(c, run=record) if c.name == "deploy" else c for c in COMMANDS]
    monkeypatch.setattr("provision.cli.tasks.COMMANDS", table)
    monkeypatch.setattr("provision.cli.program.COMMANDS", table)
    code, _, err = provision(capsys, "deploy", "-vvv", "-i", "a.yml", "-i", "b.yml", "-e", "x=1", "-e", "@v.yml",
                             "-f", "5", "-C")
    assert code == 0, err
    assert seen == {"verbose": 3, "inventory": ["a.yml", "b.yml"], "extra_vars": ["x=1", "@v.yml"], "forks": 5,
                    "check": True}


def test_writable_refuses_a_folder_and_a_read_only_file(tmp_path):
    with pytest.raises(flags.UserError, match="is a folder"):
        flags.writable(str(tmp_path), "--json")
    flags.writable(str(tmp_path / "new.json"), "--json")


# -- the real entry points, as a user runs them ------------------------------------------------------

class Listener:
    """A TCP listener on loopback that counts the connections it accepts."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self):
        self.sock.close()


def inventory_at(tmp_path, port: int) -> Path:
    path = tmp_path / "hosts.ini"
    path.write_text(f"[proxies]\nproxy ansible_host=127.0.0.1 ansible_port={port}\n"
                    f"[backends]\nweb1 ansible_host=127.0.0.2 ansible_port={port} "
                    "apps=\"[{'name': 'hello', 'port': 8080, 'message': 'Hi'}]\"\n")
    return path


@pytest.mark.parametrize("program", [["-m", "provision"], ["-m", "invoke", "-r", str(ROOT)]],
                         ids=["provision", "invoke"])
def test_dry_exits_1_with_one_line_and_nothing_connects(tmp_path, program):
    listener = Listener()
    try:
        run = subprocess.run([sys.executable, *program, "deploy", "-i", str(inventory_at(tmp_path, listener.port)),
                              "--dry"], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        listener.close()
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "--dry" in run.stderr and "did you mean --check?" in run.stderr
    assert listener.accepted == 0


def test_a_dotted_command_is_a_command_of_its_group_in_both_programs():
    from invoke import Collection
    from provision.cli.tasks import add_commands, command_tasks
    namespace = Collection()
    add_commands(namespace, command_tasks())
    assert namespace.collections["tls"].tasks["renew"].command.name == "tls.renew"
    assert "tls.renew" in build().namespace.task_names and "deploy" in build().namespace.task_names


@pytest.mark.parametrize("program", [["-m", "provision"], ["-m", "invoke", "-r", str(ROOT)]],
                         ids=["provision", "invoke"])
def test_tls_renew_without_an_acme_proxy_is_bad_input_and_nothing_connects(tmp_path, program):
    listener = Listener()
    try:
        run = subprocess.run([sys.executable, *program, "tls.renew", "-i", str(inventory_at(tmp_path, listener.port))],
                             capture_output=True, text=True, timeout=60, cwd=tmp_path,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        listener.close()
    assert run.returncode == 1 and run.stdout == "", run.stdout + run.stderr
    assert run.stderr == f"error: {tmp_path / 'hosts.ini'}: no proxy has tls: acme: nothing to renew\n"
    assert listener.accepted == 0
