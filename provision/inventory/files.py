"""Reading inventory files: strict UTF-8, YAML with duplicate keys refused (both lines named),
JSON, all with one-line errors. Deep nesting is refused, never a RecursionError."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import InventoryError


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InventoryError(f"{path}: no such inventory file") from None
    except IsADirectoryError:
        raise InventoryError(f"{path}: is a folder, expected a file") from None
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InventoryError(f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x})") from None


def load_yaml(path: Path, text: str):
    # lazy: PyYAML and our loader cost ~10 ms of start-up, needed only when a YAML file is read
    from .yamlload import load
    return load(path, text)


def load_json(path: Path, text: str):
    def pairs(items):
        out = {}
        for key, value in items:
            if key in out:
                raise InventoryError(f"{path}: key {key!r} is given twice in one JSON object")
            out[key] = value
        return out
    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise InventoryError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise InventoryError(f"{path}: nested too deeply to read") from None
    except ValueError as exc:       # an integer of more than 4,300 digits
        raise InventoryError(f"{path}: cannot read a number: {str(exc).split(';')[0]}") from None


def load_data(path: Path, text: str | None = None):
    """A YAML or JSON file's data (JSON first for .json, as JSON is also YAML)."""
    if text is None:
        text = read_text(path)
    if path.suffix == ".json":
        return load_json(path, text)
    return load_yaml(path, text)
