"""YAML inventory files through PyYAML: its safe loader (libyaml's where installed), refusing a key
given twice in one mapping, with one-line errors. Imported only when a YAML file is read."""
from __future__ import annotations

from pathlib import Path

import yaml

from .errors import InventoryError

STR, MAP, SEQ, MERGE = (f"tag:yaml.org,2002:{t}" for t in ("str", "map", "seq", "merge"))


class _Slow(Exception):
    """The document needs PyYAML's own constructor (merge keys, a recursive alias, an unhashable key)."""


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """PyYAML's safe loader (libyaml's parser and composer where installed), refusing a key given
    twice in one mapping. Plain maps, lists and strings, most of an inventory, are built by one
    short function (PyYAML's constructor spends most of a big inventory's load on its per-node
    bookkeeping); every other tag, merge keys and recursive aliases go to PyYAML's constructor."""

    def __init__(self, stream):
        super().__init__(stream)
        self._resolved: dict = {}

    def resolve(self, kind, value, implicit):
        """PyYAML's resolver, remembered for this document (keys and values repeat on every host);
        a quoted scalar is a string, as PyYAML's resolver finds after its checks."""
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)
        if not implicit[0]:
            return STR
        tag = self._resolved.get(value)
        if tag is None:
            tag = self._resolved[value] = super().resolve(kind, value, implicit)
        return tag

    def construct_document(self, node):
        scalars = {f"tag:yaml.org,2002:{t}": getattr(self, f"construct_yaml_{t}") for t in ("int", "bool", "null", "float")}
        try:
            return self._build(node, {}, scalars)
        except _Slow:
            return super().construct_document(node)

    def _build(self, node, built: dict, scalars: dict):
        """The node's value: a collection reached again through an alias is the same object."""
        tag, kind = node.tag, node.__class__
        if kind is yaml.ScalarNode:
            if tag == STR:
                return node.value
            if tag in scalars:          # ints, booleans, nulls, floats: immutable, so remembered
                key = (tag, node.value)
                if key not in built:
                    built[key] = self._scalar(scalars[tag], node)
                return built[key]
        if id(node) in built:
            value = built[id(node)]
            if value is _Slow:
                raise _Slow         # an alias inside itself
            return value
        if tag == MAP and kind is yaml.MappingNode:
            built[id(node)] = _Slow
            value = {}
            for key_node, value_node in node.value:
                if key_node.tag == MERGE:
                    raise _Slow
                key = key_node.value if key_node.tag == STR and key_node.__class__ is yaml.ScalarNode else \
                    self._build(key_node, built, scalars)
                item = value_node.value if value_node.tag == STR and value_node.__class__ is yaml.ScalarNode else \
                    self._build(value_node, built, scalars)
                size = len(value)
                try:
                    value[key] = item
                except TypeError:
                    raise _Slow from None       # an unhashable key: PyYAML's own error
                if len(value) == size:
                    self._check_duplicates(node)    # the same key twice, or two spellings of one (yes, true)
        elif tag == SEQ and kind is yaml.SequenceNode:
            built[id(node)] = _Slow
            value = [self._build(child, built, scalars) for child in node.value]
        else:
            value = self.construct_object(node, deep=True)
        built[id(node)] = value
        return value

    def _scalar(self, construct, node):
        """A scalar's value; one that cannot be read (an integer of more than 4,300 digits, a
        timestamp with month 13, !!float 'abc') is an error naming its line, not a traceback."""
        try:
            return construct(node)
        except ValueError as exc:
            raise InventoryError(f"{self.name}:{node.start_mark.line + 1}: cannot read {node.value[:40]!r}: "
                                 f"{str(exc).split(';')[0]}") from None

    def construct_object(self, node, deep=False):
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(lambda n: super(_Loader, self).construct_object(n, deep=deep), node)
        return super().construct_object(node, deep=deep)

    def _check_duplicates(self, node):
        seen: dict = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == MERGE:
                continue
            first = seen.setdefault((key_node.tag, key_node.value), key_node)
            if first is not key_node:
                raise InventoryError(f"{self.name}:{key_node.start_mark.line + 1}: key {key_node.value!r} is "
                                     f"given twice in one mapping (lines {first.start_mark.line + 1} and "
                                     f"{key_node.start_mark.line + 1})")

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self._check_duplicates(node)
        return super().construct_mapping(node, deep=deep)


def load(path: Path, text: str):
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
