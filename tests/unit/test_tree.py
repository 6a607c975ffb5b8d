"""The test tree itself: pytest imports test modules by their file's basename (no packages under
tests/), so two test files with the same name anywhere under tests/ stop the whole run."""
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_name_is_unique_under_tests():
    names = Counter(p.name for p in TESTS.rglob("test_*.py") if "fixtures" not in p.parts)
    assert [name for name, count in names.items() if count > 1] == []
