"""`-e/--extra-vars`, read as ansible-core's load_extra_vars reads them: `key=value` words (values
are strings, quoted as a shell quotes), inline YAML or JSON starting with `{` or `[`, or `@FILE`
(YAML or JSON). Each one must give a mapping; a later one replaces an earlier one's keys. They
win over every inventory variable, and a value is checked like any other: its error names `-e`.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from .errors import InventoryError
from .files import load_data


def parse(values) -> list[tuple[str, dict]]:
    """(where, variables) for each -e value, in order; ``where`` names it in errors."""
    out = []
    for text in values or ():
        if not text:
            continue
        if text.startswith("@"):
            where = f"-e {text}"
            data = load_data(Path(text[1:]))
        elif text[0] in "/.":
            raise InventoryError(f"-e {text!r}: a file of variables needs '@' in front (-e @{text})")
        elif text[0] in "[{":
            # lazy: PyYAML is needed only for -e given as YAML or JSON
            import yaml
            where = "-e"
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                at = f" at column {mark.column + 1}" if mark is not None else ""
                raise InventoryError(f"-e {text!r}: not valid YAML or JSON{at}") from None
        else:
            where = "-e"
            data = _key_values(text)
        if not isinstance(data, dict):
            raise InventoryError(f"{where}: must give a mapping of variables, got {type(data).__name__}")
        out.append((where, {str(k): v for k, v in data.items()}))
    return out


def _key_values(text: str) -> dict:
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise InventoryError(f"-e {text!r}: {exc}") from None
    found = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InventoryError(f"-e {text!r}: {word!r} is not key=value (or give YAML/JSON, or @FILE)")
        found[key] = value
    return found


def merged(values) -> tuple[dict, dict]:
    """(variables, where each came from) of every -e value, later ones winning."""
    variables, origins = {}, {}
    for where, data in parse(values):
        variables.update(data)
        origins.update(dict.fromkeys(data, where))
    return variables, origins
