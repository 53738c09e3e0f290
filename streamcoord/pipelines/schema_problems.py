"""Pydantic validation errors as located, readable :class:`Problem` s.

A pydantic error's ``loc`` mixes data keys with union tags (``"str"``, ``"Need"``, a trigger
``kind``). Walking the model types alongside tells the two apart, finds the YAML position, and
knows which fields were valid where an unknown one was written.
"""

from __future__ import annotations

import difflib
import types
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from streamcoord.pipelines.policies import WINDOW_PATTERN
from streamcoord.pipelines.problem import FieldPath, Problem, format_path
from streamcoord.pipelines.yaml_source import YamlDocument

__all__ = ["schema_problems"]

# Errors meaning "this value has the wrong shape for this union branch": when another branch of
# the same union got further, these are noise.
_SHAPE_ERRORS = frozenset(
    {"string_type", "model_type", "dict_type", "list_type", "model_attributes_type", "int_type"}
)


@dataclass(frozen=True, slots=True)
class _Located:
    error: ErrorDetails
    path: FieldPath  # data keys only
    union: tuple[FieldPath, str] | None  # (where the first union was entered, the branch taken)
    depth_after_union: int
    field_type: Any  # the type expected at `path`'s parent, for field-name hints


def schema_problems(
    error: ValidationError, model: type[BaseModel], document: YamlDocument, prefix: FieldPath
) -> list[Problem]:
    """Problems for ``error`` raised validating ``model`` from ``document`` at ``prefix``."""
    located = [_locate(detail, model, prefix) for detail in error.errors(include_url=False)]
    return [_problem(item, document) for item in _drop_losing_branches(located)] + [
        _merged_union_problem(group, document) for group in _all_branches_failed(located)
    ]


def _locate(detail: ErrorDetails, model: type[BaseModel], prefix: FieldPath) -> _Located:
    current: Any = model
    parent: Any = model
    path: list[str | int] = list(prefix)
    union: tuple[FieldPath, str] | None = None
    depth = 0
    for part in detail["loc"]:
        current = _unwrap(current)
        members = _union_members(current)
        if members is not None and isinstance(part, str) and _branch(members, part) is not None:
            union = union or (tuple(path), part)
            current = _branch(members, part)
            continue
        parent = current
        current = _child_type(current, part)
        path.append(part)
        depth += union is not None
    return _Located(detail, tuple(path), union, depth, parent)


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    members = _union_members(tp)
    if members is not None and len(members) == 1:
        return _unwrap(members[0])
    return tp


def _union_members(tp: Any) -> list[Any] | None:
    if get_origin(tp) in (Union, types.UnionType):
        return [_unwrap(arg) for arg in get_args(tp) if arg is not type(None)]
    return None


def _branch(members: Sequence[Any], tag: str) -> Any:
    for member in members:
        if getattr(member, "__name__", None) == tag or _kind_of(member) == tag:
            return member
    return None


def _kind_of(member: Any) -> str | None:
    if isinstance(member, type) and issubclass(member, BaseModel) and "kind" in member.model_fields:
        default = member.model_fields["kind"].default
        return default if isinstance(default, str) else None
    return None


def _child_type(tp: Any, part: str | int) -> Any:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(str(part))
        return field.annotation if field is not None else Any
    args = get_args(tp)
    if get_origin(tp) is list and args:
        return args[0]
    if get_origin(tp) is dict and len(args) == 2:
        return args[1]
    return Any


def _drop_losing_branches(located: list[_Located]) -> Iterable[_Located]:
    """Errors outside unions, and in each union the branches that got past the value's shape."""
    for point, branches in _by_union(located).items():
        winners = [errs for errs in branches.values() if not _shape_only(errs)]
        if point is None or winners:
            for errs in winners if point is not None else branches.values():
                yield from errs


def _all_branches_failed(located: list[_Located]) -> Iterable[list[_Located]]:
    for point, branches in _by_union(located).items():
        if point is not None and all(_shape_only(errs) for errs in branches.values()):
            yield [errs[0] for errs in branches.values()]


def _by_union(located: list[_Located]) -> dict[FieldPath | None, dict[str, list[_Located]]]:
    groups: dict[FieldPath | None, dict[str, list[_Located]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for item in located:
        point, tag = item.union if item.union else (None, "")
        groups[point][tag].append(item)
    return groups


def _shape_only(errors: list[_Located]) -> bool:
    return all(e.depth_after_union == 0 and e.error["type"] in _SHAPE_ERRORS for e in errors)


def _merged_union_problem(group: list[_Located], document: YamlDocument) -> Problem:
    path = group[0].union[0] if group[0].union else group[0].path
    forms = sorted({"a string" if i.union and i.union[1] == "str" else "a mapping" for i in group})
    line, col = document.position(path)
    return Problem(
        document.file, line, col, format_path(path), f"expected {' or '.join(forms)}", ""
    )


def _problem(item: _Located, document: YamlDocument) -> Problem:
    kind = item.error["type"]
    line, col = document.position(item.path, key=kind == "extra_forbidden")
    message, hint = _describe(item)
    return Problem(document.file, line, col, format_path(item.path), message, hint)


def _describe(item: _Located) -> tuple[str, str]:
    describe = _DESCRIBERS.get(item.error["type"])
    if describe is not None:
        return describe(item)
    error = item.error
    return f"{error['msg']}{_got(error.get('input'))}", ""


def _unknown_field(item: _Located) -> tuple[str, str]:
    name = str(item.path[-1])
    return f"unknown field {name!r}", _closest(name, _field_names(item.field_type))


def _missing_field(item: _Located) -> tuple[str, str]:
    return f"missing required field {item.path[-1]!r}", ""


def _missing_kind(item: _Located) -> tuple[str, str]:
    return "missing 'kind'", f"add kind: one of {', '.join(_tags(item))}"


def _unknown_kind(item: _Located) -> tuple[str, str]:
    tag = str(item.error.get("ctx", {}).get("tag", ""))
    return f"unknown kind {tag!r}", _closest(tag, _tags(item), listing=True)


def _not_allowed(item: _Located) -> tuple[str, str]:
    value = item.error.get("input")
    field_type = _unwrap(_child_type(item.field_type, item.path[-1]))
    options = [str(arg) for arg in get_args(field_type)]
    return f"{value!r} is not allowed", _closest(str(value), options, listing=True)


def _bad_name(item: _Located) -> tuple[str, str]:
    if (item.error.get("ctx") or {}).get("pattern") == WINDOW_PATTERN:
        hint = "write it as 1h, 30m, 1d or 1h30m (s, m, h, d)"
        return f"{item.error.get('input')!r} is not a duration", hint
    hint = "lower-case letters, digits, '_' and '-', starting with a letter"
    return f"{item.error.get('input')!r} is not a valid name", hint


_DESCRIBERS: dict[str, Callable[[_Located], tuple[str, str]]] = {
    "extra_forbidden": _unknown_field,
    "missing": _missing_field,
    "union_tag_not_found": _missing_kind,
    "union_tag_invalid": _unknown_kind,
    "literal_error": _not_allowed,
    "string_pattern_mismatch": _bad_name,  # only names and windows have a pattern
}


def _got(value: Any) -> str:
    return f", got {value!r}" if isinstance(value, str | int | float | bool) else ""


def _field_names(tp: Any) -> list[str]:
    tp = _unwrap(tp)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _tags(item: _Located) -> list[str]:
    members = _union_members(_unwrap(_child_type(item.field_type, item.path[-1])))
    return [tag for member in members or [] if (tag := _kind_of(member))]


def _closest(name: str, options: Sequence[str], *, listing: bool = False) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    if options and (listing or len(options) <= 16):
        return f"expected one of: {', '.join(options)}"
    return ""
