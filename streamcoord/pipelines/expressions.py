"""The expression language of specs: CEL, compiled once, evaluated without clock or I/O.

Conditions, filters, run keys and need mappings are CEL expressions; params are *templates*:
JSON values whose strings may hold ``${ expr }`` spans. A string that is exactly one span yields
the expression's typed value (a number stays a number); any other string interpolates the
values as text. ``$${`` writes a literal ``${``.

Determinism: CEL has no clock, no randomness and no I/O, and the only functions offered are
CEL's own plus the pure extension library of :mod:`cel.stdlib` (strings, math, lists, sets,
base64). :func:`compile_expression` rejects calls to any other function (``now()`` included)
and, given the names a context binds, references to unknown variables.

See ``docs/expressions.md`` for the language with examples.
"""

from __future__ import annotations

import base64
import datetime as dt
import difflib
import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import cel
from cel.stdlib import EXTENSIONS
from pydantic import JsonValue

from streamcoord.errors import SpecError, StreamcoordError

__all__ = [
    "CONDITION_VARIABLES",
    "EVENT_VARIABLES",
    "NEED_VARIABLES",
    "RUN_KEY_VARIABLES",
    "CompiledExpression",
    "CompiledTemplate",
    "ExpressionError",
    "ExpressionEvaluationError",
    "compile_expression",
    "compile_template",
    "to_json_value",
]

#: Names bound when a trigger's filter, dataset, partition or event time is evaluated.
EVENT_VARIABLES: frozenset[str] = frozenset({"event"})
#: Names bound when a pipeline's run key is evaluated (``schedule`` only for schedule ticks).
RUN_KEY_VARIABLES: frozenset[str] = frozenset({"event", "schedule"})
#: Names bound when a need's ``run_key`` mapping is evaluated.
NEED_VARIABLES: frozenset[str] = frozenset({"run_key", "event", "params"})
#: Names bound when a stage's condition, params or a need's ``watermark`` are evaluated:
#: ``upstream`` maps each succeeded need (``stage`` or ``pipeline.stage``) to its outputs.
CONDITION_VARIABLES: frozenset[str] = frozenset(
    {"event", "run_key", "params", "pipeline", "upstream"}
)

# Functions the Rust core of CEL implements natively; operators (`_+_`, `@in`) are always allowed.
_NATIVE_FUNCTIONS = frozenset(
    {
        "size", "contains", "startsWith", "endsWith", "matches", "has",
        "int", "uint", "double", "string", "bytes", "dyn", "type",
        "timestamp", "duration",
        "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek",
        "getHours", "getMinutes", "getSeconds", "getMilliseconds",
        "all", "exists", "exists_one", "map", "filter",
    }
)  # fmt: skip
_STDLIB: dict[str, Callable[..., Any]] = {
    name: function for library in EXTENSIONS.values() for name, function in library.items()
}
# A namespaced call such as `math.greatest(...)` is reported as variable `math`, function
# `greatest`; the namespaces are therefore allowed as variable names.
_NAMESPACES = frozenset(name.split(".")[0] for name in _STDLIB if "." in name)
_ALLOWED_FUNCTIONS = _NATIVE_FUNCTIONS | {name.rsplit(".", 1)[-1] for name in _STDLIB}
_PARSE_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")
# What the binding raises when evaluation fails (it has no exception type of its own).
_EVALUATION_ERRORS = (RuntimeError, TypeError, ValueError, IndexError, ArithmeticError)
_EXPECTING = re.compile(r" expecting \{.*\}$")
_COMPREHENSION_VARIABLE = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\(\s*(\w+)\s*,")


class ExpressionError(SpecError):
    """A CEL expression or template that does not compile, or calls what specs may not call.

    ``line`` and ``column`` (1-based) point into ``source``; ``reason`` is the bare problem.
    """

    def __init__(self, source: str, reason: str, *, line: int = 1, column: int = 1, hint: str = ""):
        super().__init__(
            f"invalid expression {source!r} at {line}:{column}: {reason}",
            hint=hint or "see docs/expressions.md for the expression language",
        )
        self.source = source
        self.reason = reason
        self.line = line
        self.column = column


class ExpressionEvaluationError(StreamcoordError):
    """A compiled expression that failed on the values it was given (a missing field, say)."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(
            f"expression {source!r} failed: {reason}",
            hint="guard optional fields with has(...) or a ternary ?:",
        )
        self.source = source
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CompiledExpression:
    """A CEL expression compiled once; :meth:`evaluate` is pure and deterministic."""

    source: str
    program: Any  # cel.Program: the binding ships no type stubs
    variables: frozenset[str]
    # Only the extension functions this expression calls: registering all of them costs ~25 us
    # per evaluation, ten times the evaluation itself.
    functions: Mapping[str, Callable[..., Any]]

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """Evaluate with ``variables`` bound; failures raise :class:`ExpressionEvaluationError`."""
        try:
            return self.program.execute({**variables, **self.functions})
        except KeyError as error:
            raise ExpressionEvaluationError(self.source, f"no such key: {error}") from error
        except _EVALUATION_ERRORS as error:
            raise ExpressionEvaluationError(self.source, _first_line(str(error))) from error


def compile_expression(
    source: str, *, variables: Collection[str] | None = None
) -> CompiledExpression:
    """Compile CEL ``source``; with ``variables``, also reject references to any other name.

    Raises :class:`ExpressionError` with the position of the first problem.
    """
    if not source.strip():
        raise ExpressionError(source, "the expression is empty")
    try:
        program = cel.compile(source)
    except ValueError as error:
        line, column, reason = _parse_error(str(error))
        raise ExpressionError(source, reason, line=line, column=column) from error
    called = program.functions()
    _check_functions(source, called)
    referenced = frozenset(program.variables())
    if variables is not None:
        _check_variables(source, referenced, frozenset(variables))
    extensions = {name: _STDLIB[name] for name in _STDLIB if name.rsplit(".", 1)[-1] in called}
    return CompiledExpression(source, program, referenced, extensions)


def _parse_error(message: str) -> tuple[int, int, str]:
    match = _PARSE_POSITION.search(message)
    if match is None:
        return 1, 1, _first_line(message)
    line, column, reason = match.groups()
    # The parser lists every token it could accept; the list is noise to someone writing a spec.
    return int(line), int(column), _EXPECTING.sub("", reason).strip()


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "unknown error"


def _check_functions(source: str, functions: list[str]) -> None:
    for name in functions:
        # Operators are reported as functions too (`_+_`, `!_`, `@in`): no identifier spells them.
        if not name.isidentifier() or name in _ALLOWED_FUNCTIONS:
            continue
        raise ExpressionError(
            source,
            f"unknown function {name!r}",
            column=max(source.find(name), 0) + 1,
            hint=_unknown_function_hint(name),
        )


def _unknown_function_hint(name: str) -> str:
    if name.lower() in {"now", "today", "time", "random", "rand", "uuid"}:
        return "expressions are deterministic: there is no clock or randomness; use event.time"
    close = difflib.get_close_matches(name, sorted(_ALLOWED_FUNCTIONS), n=1)
    return f"did you mean {close[0]!r}?" if close else "see docs/expressions.md for the functions"


def _check_variables(source: str, referenced: frozenset[str], allowed: frozenset[str]) -> None:
    bound = set(_COMPREHENSION_VARIABLE.findall(source)) | _NAMESPACES | allowed
    for name in sorted(referenced - bound):
        close = difflib.get_close_matches(name, sorted(allowed), n=1)
        hint = f"did you mean {close[0]!r}?" if close else ""
        names = ", ".join(sorted(allowed)) or "none"
        raise ExpressionError(
            source,
            f"unknown variable {name!r} (available here: {names})",
            column=max(source.find(name), 0) + 1,
            hint=hint,
        )


# ---- templates ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Interpolation:
    parts: tuple[str | CompiledExpression, ...]

    def render(self, variables: Mapping[str, Any]) -> JsonValue:
        if len(self.parts) == 1 and isinstance(self.parts[0], CompiledExpression):
            return to_json_value(self.parts[0].evaluate(variables))
        return "".join(
            part if isinstance(part, str) else _as_text(part.evaluate(variables))
            for part in self.parts
        )


_Node = JsonValue | _Interpolation | list["_Node"] | dict[str, "_Node"]


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """A JSON value whose strings' ``${ expr }`` spans were compiled once."""

    source: JsonValue
    _tree: Any  # _Node; Any because mypy cannot follow the recursive alias through dataclasses
    expressions: tuple[CompiledExpression, ...]

    def render(self, variables: Mapping[str, Any]) -> JsonValue:
        """Substitute every span, evaluated with ``variables``; the result is plain JSON."""
        return _render(self._tree, variables)


def compile_template(
    value: JsonValue, *, variables: Collection[str] | None = None
) -> CompiledTemplate:
    """Compile every ``${ expr }`` span inside ``value`` (strings, lists and maps, recursively)."""
    found: list[CompiledExpression] = []
    tree = _compile_node(value, variables, found)
    return CompiledTemplate(value, tree, tuple(found))


def _compile_node(
    value: JsonValue, variables: Collection[str] | None, found: list[CompiledExpression]
) -> _Node:
    if isinstance(value, str):
        parts = _split_template(value, variables)
        found.extend(part for part in parts if isinstance(part, CompiledExpression))
        if all(isinstance(part, str) for part in parts):
            return "".join(str(part) for part in parts)
        return _Interpolation(parts)
    if isinstance(value, list):
        return [_compile_node(item, variables, found) for item in value]
    if isinstance(value, dict):
        return {key: _compile_node(item, variables, found) for key, item in value.items()}
    return value


def _render(node: _Node, variables: Mapping[str, Any]) -> JsonValue:
    if isinstance(node, _Interpolation):
        return node.render(variables)
    if isinstance(node, list):
        return [_render(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: _render(item, variables) for key, item in node.items()}
    return node


def _split_template(
    text: str, variables: Collection[str] | None
) -> tuple[str | CompiledExpression, ...]:
    parts: list[str | CompiledExpression] = []
    literal: list[str] = []
    index = 0
    while index < len(text):
        if text.startswith("$${", index):
            literal.append("${")
            index += 3
        elif text.startswith("${", index):
            end = _span_end(text, index + 2)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_compile_span(text, index + 2, end, variables))
            index = end + 1
        else:
            literal.append(text[index])
            index += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def _span_end(text: str, start: int) -> int:
    """Index of the ``}`` closing a span opened before ``start``; braces in CEL maps nest."""
    depth, quote, index = 0, "", start
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return index
            depth -= 1
        index += 1
    raise ExpressionError(
        text, "'${' is never closed by '}'", column=start - 1, hint="write $${ for a literal ${"
    )


def _compile_span(
    text: str, start: int, end: int, variables: Collection[str] | None
) -> CompiledExpression:
    try:
        return compile_expression(text[start:end].strip(), variables=variables)
    except ExpressionError as error:
        # Report the position inside the whole template string, which is what the user sees.
        leading = len(text[start:end]) - len(text[start:end].lstrip())
        raise ExpressionError(
            text, error.reason, column=start + leading + error.column, hint=error.hint
        ) from error


def to_json_value(value: Any) -> JsonValue:
    """Turn a CEL result into plain JSON: timestamps as RFC 3339, durations as ``"90s"``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.timedelta | bytes):
        return _scalar_text(value)
    if isinstance(value, list | tuple):
        return [to_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_json_value(item) for key, item in value.items()}
    return str(value)


def _scalar_text(value: dt.datetime | dt.timedelta | bytes) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.timedelta):
        return f"{value.total_seconds():g}s"
    return base64.b64encode(value).decode("ascii")


def _as_text(value: Any) -> str:
    converted = to_json_value(value)
    if isinstance(converted, str):
        return converted
    return json.dumps(converted, separators=(",", ":"), sort_keys=True)
