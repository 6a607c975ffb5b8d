"""Reading inventory files: strict UTF-8, YAML with duplicate keys refused (both lines named),
JSON, all with one-line errors. Deep nesting is refused, never a RecursionError."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

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


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """PyYAML's safe loader (libyaml's parser where installed), refusing a key given twice in one
    mapping."""

    _resolved: dict = {}

    def resolve(self, kind, value, implicit):
        """PyYAML's resolver, remembered: the same keys and values repeat on every host line."""
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        if key not in self._resolved:
            self._resolved[key] = super().resolve(kind, value, implicit)
        return self._resolved[key]

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                first = seen.setdefault((key_node.tag, key_node.value), key_node)
                if first is not key_node:
                    raise InventoryError(f"{self.name}:{key_node.start_mark.line + 1}: key {key_node.value!r} is "
                                         f"given twice in one mapping (lines {first.start_mark.line + 1} and "
                                         f"{key_node.start_mark.line + 1})")
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path, text: str):
    loader = None
    try:
        loader = _Loader(text)
        loader.name = str(path)
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise InventoryError(f"{path}{where}: {problem}") from None
    except RecursionError:
        raise InventoryError(f"{path}: nested too deeply to read") from None
    finally:
        if loader is not None:
            loader.dispose()


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


def load_data(path: Path, text: str | None = None):
    """A YAML or JSON file's data (JSON first for .json, as JSON is also YAML)."""
    if text is None:
        text = read_text(path)
    if path.suffix == ".json":
        return load_json(path, text)
    return load_yaml(path, text)
