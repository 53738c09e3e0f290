"""The core's handle on spec expressions: compiling is :mod:`streamcoord.pipelines.expressions`'.

One expression language, one implementation of its rules: the spec module compiles and checks
every expression and template, and evaluates them. This adapter adds two things the hot path
needs:

- ``where`` in compile errors, so a catalog build names the pipeline, stage and field;
- a shortcut for the most common expression, a plain field path such as ``event.data.key``:
  the CEL binding converts the whole context on every call (about 15-30 us), a dict walk costs
  well under a microsecond. The shortcut only ever returns what CEL would return (a string,
  bool, float or 64-bit int found at that path); anything else, including every error, goes
  through CEL, so results and error messages are CEL's.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from streamcoord.errors import SpecError
from streamcoord.pipelines.expressions import (
    CompiledExpression,
    CompiledTemplate,
    ExpressionError,
    ExpressionEvaluationError,
)
from streamcoord.pipelines.expressions import compile_expression as _compile
from streamcoord.pipelines.expressions import compile_template as _compile_template

__all__ = ["Compiled", "ExpressionEvaluationError", "compile_expression", "compile_template"]

_PATH = re.compile(r"\s*([A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)\s*")
_LITERALS = frozenset({"true", "false", "null"})
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled expression; :meth:`evaluate` raises :class:`ExpressionEvaluationError`."""

    source: str
    expression: CompiledExpression
    path: tuple[str, ...] | None  # set when the expression is a plain field path

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """The expression's value with ``variables`` bound."""
        if self.path is not None:
            value = _walk(variables, self.path)
            if value is not _MISS:
                return value
        return self.expression.evaluate(variables)


_MISS = object()


def _walk(variables: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = variables
    for name in path:
        if type(value) is not dict or name not in value:
            return _MISS
        value = value[name]
    kind = type(value)
    if kind is str or kind is bool or kind is float:
        return value
    if kind is int and _INT64[0] <= value <= _INT64[1]:
        return value
    return _MISS  # lists, maps, null, big ints: let CEL convert them


def _path_of(source: str) -> tuple[str, ...] | None:
    found = _PATH.fullmatch(source)
    if found is None:
        return None
    path = tuple(part.strip() for part in found.group(1).split("."))
    return None if path[0] in _LITERALS else path


def compile_expression(source: str, where: str, variables: Collection[str]) -> Compiled:
    """Compile ``source`` (which may use ``variables``); a :class:`SpecError` names ``where``."""
    try:
        expression = _compile(source, variables=variables)
    except ExpressionError as exc:
        raise SpecError(f"{where}: {exc.message}", hint=exc.hint) from exc
    return Compiled(source, expression, _path_of(source))


def compile_template(value: Any, where: str, variables: Collection[str]) -> CompiledTemplate:
    """Compile the ``${ }`` spans in ``value``; a :class:`SpecError` names ``where``."""
    try:
        return _compile_template(value, variables=variables)
    except ExpressionError as exc:
        raise SpecError(f"{where}: {exc.message}", hint=exc.hint) from exc
