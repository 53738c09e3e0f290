"""YAML text to plain data, remembering the line and column of every node and key.

Pure: takes text, returns values. ruamel.yaml's round-trip loader keeps positions on maps and
lists (``.lc``); scalars have none, so a scalar's position is read from its parent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from streamcoord.pipelines.problem import FieldPath, Problem

__all__ = ["Position", "YamlDocument", "parse_yaml"]

#: 1-based line and column.
Position = tuple[int, int]


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """One YAML document as plain Python data, with the positions of its nodes and keys."""

    file: str
    data: Any
    values: Mapping[FieldPath, Position] = field(default_factory=dict)
    keys: Mapping[FieldPath, Position] = field(default_factory=dict)

    def position(self, path: FieldPath, *, key: bool = False) -> Position:
        """Where ``path`` is; the nearest enclosing node when it does not exist (a missing field).

        With ``key``, the position of the mapping key rather than its value.
        """
        if key and path in self.keys:
            return self.keys[path]
        for end in range(len(path), -1, -1):
            if path[:end] in self.values:
                return self.values[path[:end]]
        return (1, 1)


def parse_yaml(text: str, file: str) -> tuple[list[YamlDocument], list[Problem]]:
    """Every document in ``text``; malformed YAML yields a :class:`Problem`, never an exception."""
    try:
        loaded = list(YAML(typ="rt").load_all(text))
    except MarkedYAMLError as error:
        return [], [_syntax_problem(error, file)]
    except YAMLError as error:
        return [], [Problem(file, 1, 1, "", f"malformed YAML: {error}")]
    documents = []
    for root in loaded:
        values: dict[FieldPath, Position] = {(): _own_position(root)}
        keys: dict[FieldPath, Position] = {}
        data = _plain(root, (), values, keys)
        documents.append(YamlDocument(file, data, values, keys))
    return documents, []


def _syntax_problem(error: MarkedYAMLError, file: str) -> Problem:
    mark = error.problem_mark or error.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    message = f"malformed YAML: {error.problem}" if error.problem else "malformed YAML"
    if error.context:
        message += f" ({error.context})"
    return Problem(file, line, col, "", message, "check indentation, quotes and brackets")


def _own_position(node: Any) -> Position:
    lc = getattr(node, "lc", None)
    return (lc.line + 1, lc.col + 1) if lc is not None else (1, 1)


def _plain(
    node: Any, path: FieldPath, values: dict[FieldPath, Position], keys: dict[FieldPath, Position]
) -> Any:
    if isinstance(node, CommentedMap):
        result = {}
        for key, value in node.items():
            child = (*path, key)
            keys[child] = _shift(node.lc.key(key))
            values[child] = (
                _own_position(value) if hasattr(value, "lc") else _shift(node.lc.value(key))
            )
            result[_scalar(key)] = _plain(value, child, values, keys)
        return result
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            child = (*path, index)
            values[child] = _shift(node.lc.item(index))
            items.append(_plain(value, child, values, keys))
        return items
    return _scalar(node)


def _shift(position: tuple[int, int]) -> Position:
    return (position[0] + 1, position[1] + 1)


def _scalar(value: Any) -> Any:
    # ruamel's scalar subclasses (ScalarFloat, LiteralScalarString, ...) become the plain types,
    # so validated specs hold nothing YAML-specific.
    for plain in (bool, int, float, str):
        if isinstance(value, plain):
            return plain(value)
    return value
