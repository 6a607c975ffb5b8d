"""Test ids that can be given back to pytest on a command line (mutmut names each test it runs)."""
import re


def pytest_make_parametrize_id(config, val, argname):
    """A string with brackets, '::' or a line break in it would not parse as part of a test id."""
    if isinstance(val, str) and re.search(r"[\[\]\n\r\\]|::", val):
        return re.sub(r"[^A-Za-z0-9_.,:' -]+|::", "-", val)[:60]
    return None
