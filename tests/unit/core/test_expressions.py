"""The core evaluates spec expressions through streamcoord.pipelines.expressions, with a
shortcut for plain field paths that must never disagree with CEL."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from streamcoord.core._expressions import (
    ExpressionEvaluationError,
    compile_expression,
    compile_template,
)
from streamcoord.errors import SpecError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.text(max_size=5)
    | st.floats(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abk"), inner, max_size=3)
    ),
    max_leaves=6,
)
PATHS = ["event", "event.data", "event.data.k", "event.data.k.a", "event . data . b"]


def _outcome(source: str, variables: dict[str, Any], *, shortcut: bool) -> tuple[str, Any]:
    compiled = compile_expression(source, "test", {"event"})
    if not shortcut:
        compiled = type(compiled)(compiled.source, compiled.expression, None)
    try:
        return "value", compiled.evaluate(variables)
    except ExpressionEvaluationError as exc:
        return "error", exc.message


@given(st.sampled_from(PATHS), json_values)
@example("event.data.k", {"k": 2**64})  # beyond CEL's int64
@example("event.data.k", {"k": 7})
@example("event.data", {"k": [1]})  # maps and lists are CEL's to convert
@example("event.data.k", {"k": None})
def test_the_field_path_shortcut_gives_exactly_what_cel_gives(path: str, data: Any) -> None:
    variables = {"event": {"data": data, "id": "e1"}}
    assert _outcome(path, variables, shortcut=True) == _outcome(path, variables, shortcut=False)


@pytest.mark.parametrize("source", ["true", "null", "event.data.k == 1", "size(event.data)"])
def test_literals_and_real_expressions_are_not_taken_for_paths(source: str) -> None:
    assert compile_expression(source, "test", {"event"}).path is None


def test_compile_errors_name_where_the_expression_is() -> None:
    with pytest.raises(SpecError, match=r"^pipeline 'p' run_key: invalid expression 'event\.\('"):
        compile_expression("event.(", "pipeline 'p' run_key", {"event"})
    with pytest.raises(SpecError, match=r"stage 'a' params: .*unknown variable 'nope'"):
        compile_template({"x": "${ nope }"}, "stage 'a' params", {"event"})
