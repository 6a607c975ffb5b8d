"""The README's first run and the manual's command-line contract match the code."""
import re
from pathlib import Path

from provision.cli.commands import COMMANDS
from provision.deploy import syntax_check
from provision.engine import Options

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()


def test_the_readme_is_a_front_page_whose_files_exist():
    assert len(README.splitlines()) <= 120
    for path in set(re.findall(r"\b(inventory/[\w.-]+\.(?:ini|yml))\b", README)):
        assert (ROOT / path).is_file(), path


def test_the_readme_walks_through_the_example_inventory_as_committed():
    example = ROOT / "inventory" / "example.ini"
    shown = re.search(r"```ini\n(.*?)```", README, re.S).group(1)
    committed = "".join(line for line in example.read_text().splitlines(keepends=True)
                        if not line.startswith("#")).strip() + "\n"
    assert shown.strip() + "\n" == committed.replace("\n\n\n", "\n\n")
    assert syntax_check([str(example)], Options()) == []


def test_the_manual_states_the_exit_codes_and_every_command():
    table = OPERATIONS[OPERATIONS.index("## Exit codes"):]
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 4 |", "| 130 |"):
        assert code in table
    for c in COMMANDS:
        assert f"provision {c.name}" in OPERATIONS, c.name
