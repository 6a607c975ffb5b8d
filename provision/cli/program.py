"""`provision`: the console script, an invoke.Program over the table of commands, as Fabric builds
`fab`. Its core flags are ours (--help, --version, --list, shell completion): Invoke's --dry,
--echo, --hide, --pty, --warn-only, --collection and --search-root are not offered, and a flag
typed by habit gets a suggestion ("no such option '--dry'; did you mean --check?").
"""
from __future__ import annotations

import difflib
import sys

from invoke import Collection, Program
from invoke.completion.complete import complete, print_completion_script
from invoke.exceptions import Exit, ParseError
from invoke.parser import Argument

from ..engine import take_sudo_password
from .commands import COMMANDS
from .contract import INTERRUPTED, USAGE
from .tasks import add_commands, command_tasks, help_text

# Flags other tools' users type by habit, and ours that do what they meant.
HABITS = {"--dry": "--check", "--dry-run": "--check", "-R": "-C/--check", "--echo": "-vvv",
          "--hosts": "-l/--limit", "-H": "-l/--limit", "--user": "-e ansible_user=NAME", "-u": "-e ansible_user=NAME",
          "--sudo": "-b/--become", "--prompt-for-sudo-password": "-K/--ask-become-pass", "-p": "-K/--ask-become-pass",
          "--verbose": "-v", "--extra-vars": "-e"}
HELP = ("-h", "--help")


class Provision(Program):
    def core_args(self) -> list[Argument]:
        return [
            Argument(names=("help", "h"), optional=True, help="show this help, or a command's: provision COMMAND --help"),
            Argument(names=("version", "V"), kind=bool, default=False, help="show the version and exit"),
            Argument(names=("list",), kind=bool, default=False, help="list the commands"),
            Argument(names=("complete",), kind=bool, default=False, help="print tab-completion candidates"),
            Argument(names=("print-completion-script",), kind=str, default="",
                     help="print the tab-completion script for bash, zsh or fish"),
        ]

    def run(self, argv=None, exit: bool = True) -> None:
        try:
            self.create_config()
            self.parse_core(argv)
            self.parse_collection()
            try:
                self.parse_tasks()
            except ParseError as exc:
                raise Exit(f"error: {friendly(exc)}", code=USAGE) from None
            self.parse_cleanup()
            self.update_config()
            self.execute()
        except Exit as exc:
            if exc.message:
                print(exc.message, file=sys.stderr)
            if exit:
                sys.exit(exc.code)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            if exit:
                sys.exit(INTERRUPTED)

    def parse_core(self, argv) -> None:
        self.normalize_argv(argv)
        self.argv = help_first(self.argv)
        try:
            self.parse_core_args()
        except ParseError as exc:
            raise Exit(f"error: {friendly(exc)}", code=USAGE) from None
        if self.args.version.value:
            self.print_version()
            raise Exit
        if self.args["print-completion-script"].value:
            print_completion_script(shell=self.args["print-completion-script"].value, names=self.binary_names)
            raise Exit

    def parse_cleanup(self) -> None:
        wanted = self.args.help.value
        if wanted is True or self.args.list.value:
            self.print_help()
            raise Exit
        if wanted:
            command = next((c for c in COMMANDS if c.name == wanted), None)
            if command is None:
                raise Exit(f"error: no command named {wanted!r} (provision --help lists them)", code=USAGE)
            print(help_text(command, self.binary))
            raise Exit
        if self.args.complete.value:
            complete(names=self.binary_names, core=self.core, initial_context=self.initial_context,
                     collection=self.collection, parser=self._make_parser())
        if not self.tasks:
            self.print_help()
            raise Exit

    def update_config(self, merge: bool = True) -> None:
        """Only what our commands read: the words after `--` (run's shell command)."""
        self.config.load_overrides({"provision_remainder": self.core.remainder}, merge=False)
        if merge:
            self.config.merge()

    def print_version(self) -> None:
        # lazy: the installed version is looked up only for --version
        from importlib.metadata import PackageNotFoundError, version
        try:
            found = version("provision")
        except PackageNotFoundError:
            found = "unknown (not installed)"
        print(f"provision {found}")

    def print_help(self) -> None:
        width = max(len(c.name) for c in COMMANDS)
        print(f"Usage: {self.binary} COMMAND [options]    ({self.binary} COMMAND --help: its options)\n")
        print("Commands:")
        for c in COMMANDS:
            print(f"  {c.name.ljust(width)}   {c.doc.splitlines()[0] if c.doc else ''}")
        print("\nOptions:")
        for names, text in self.initial_context.help_tuples():
            print(f"  {names:<34} {text}")
        print("\nExit codes: 0 ok, 1 bad input (one line, nothing connected), 2 a host failed, "
              "4 a host unreachable and none failed, 130 interrupted.")


def help_first(argv: list[str]) -> list[str]:
    """`provision COMMAND ... --help` -> `provision --help COMMAND`, also where a positional
    PATTERN would swallow --help (Invoke fills positionals first)."""
    words = argv[1:]
    end = words.index("--") if "--" in words else len(words)
    names = {c.name for c in COMMANDS}
    command = next((w for w in words[:end] if w in names), None)
    if command and any(w in HELP for w in words[:end]):
        return [argv[0], "--help", command]
    return argv


def friendly(exc: ParseError) -> str:
    """Invoke's parse errors as one line that says what to do."""
    text = str(exc)
    context = getattr(exc, "context", None)
    where = f" for {context.name}" if context is not None and context.name else ""
    if text.startswith("No idea what "):
        token = text[len("No idea what "):].rsplit(" is!", 1)[0].strip("'\"")
        if token in HABITS:
            return f"no such option {token!r}; did you mean {HABITS[token]}?"
        if not token.startswith("-"):
            return f"{token!r} is not a command or an option{where} ({'provision --help' if not where else f'provision {context.name} --help'} lists them)"
        known = list(context.flags) if context is not None else []
        near = difflib.get_close_matches(token, known, n=1, cutoff=0.75)
        hint = f"; did you mean {near[0]}?" if near else \
            f" ({'provision --help' if not where else f'provision {context.name} --help'} lists them)"
        return f"no such option {token!r}{where}{hint}"
    if "needed value and was not given one" in text:
        flag = text.split("'")[1] if "'" in text else text
        return f"{flag} needs a value{where}"
    if "did not receive required positional arguments" in text:
        return f"{context.name if context is not None else 'the command'}: missing PATTERN"
    return text.rstrip("!").replace("'", "").lower() if text else "bad command line"


def build() -> Provision:
    namespace = Collection()
    add_commands(namespace, command_tasks())
    return Provision(namespace=namespace, name="provision", binary="provision")


def main() -> None:
    take_sudo_password()        # at start-up, before any inventory script, ssh or pip runs: no child inherits it
    build().run()
