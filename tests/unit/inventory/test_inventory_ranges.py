"""Host patterns (provision.inventory.ranges): ports split as Ansible's parse_address does, ranges
expanded in order, and each refusal word for word."""
import pytest

from provision.inventory import ranges
from provision.inventory.errors import InventoryError


@pytest.mark.parametrize("pattern, split", [
    ("web1", ("web1", None)),
    ("web1:2222", ("web1", 2222)),
    ("web[01:03].test:22", ("web[01:03].test", 22)),
    ("[::1]:22", ("::1", 22)),
    ("fe80::1", ("fe80::1", None)),
    ("10.0.0.1:80", ("10.0.0.1", 80)),
    ("a b:22", ("a b:22", None)),
    ("host.:22", ("host.", 22)),
    ("x:y", ("x:y", None)),
])
def test_split_port(pattern, split):
    assert ranges.split_port(pattern) == split


@pytest.mark.parametrize("pattern, names", [
    ("web", ["web"]),
    ("web[1:3]", ["web1", "web2", "web3"]),
    ("web[01:10:4].test", ["web01.test", "web05.test", "web09.test"]),
    ("db-[a:c]", ["db-a", "db-b", "db-c"]),
    ("db-[a:e:2]", ["db-a", "db-c", "db-e"]),
    ("[y:B]", ["y", "z", "A", "B"]),
    ("[:2]", ["0", "1", "2"]),
    ("h[1:2]-[a:b]", ["h1-a", "h1-b", "h2-a", "h2-b"]),
    ("[9:10]", ["9", "10"]),
    ("[3:3]", ["3"]),
    ("db-[c:c]", ["db-c"]),
])
def test_expand_in_order(pattern, names):
    assert ranges.expand(pattern, "w") == names


@pytest.mark.parametrize("pattern, problem", [
    ("web[1:3", "host range 'web[1:3': unbalanced '[' ']'"),
    ("web[1]", "host range 'web[1]' must be [begin:end] or [begin:end:step]"),
    ("web[1:2:3:4]", "host range 'web[1:2:3:4]' must be [begin:end] or [begin:end:step]"),
    ("web[1:]", "host range 'web[1:]' must give an end value"),
    ("web[1:3:x]", "host range 'web[1:3:x]': step must be a number"),
    ("web[1:3:0]", "host range 'web[1:3:0]': step must be 1 or more"),
    ("web[01:100]", "host range 'web[01:100]' must give begin and end with the same width"),
    ("web[c:a]", "host range 'web[c:a]' must have begin <= end"),
    ("web[a:10]", "host range 'web[a:10]': bounds must be numbers or single letters"),
    ("web[aa:bb]", "host range 'web[aa:bb]': bounds must be numbers or single letters"),
    ("web[0:100001]", "host range 'web[0:100001]' makes more than 100000 hosts"),
    ("a[1:400]b[1:400]", "host range 'a[1:400]b[1:400]' makes more than 100000 hosts"),
])
def test_expand_refusals_word_for_word(pattern, problem):
    with pytest.raises(InventoryError) as err:
        ranges.expand(pattern, "inv.ini line 3")
    assert str(err.value) == f"inv.ini line 3: {problem}"


def test_the_bound_itself_is_allowed():
    assert len(ranges.expand("[1:100000]", "w")) == 100000
    assert len(ranges.expand("a[1:100]b[1:1000]", "w")) == 100000
    assert ranges.expand("[0:100000:100000]", "w") == ["0", "100000"]
    assert ranges.expand("[00:99:99]", "w") == ["00", "99"]
