"""CEL expressions and ${ } templates: compile once, evaluate deterministically, fail precisely."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamcoord.errors import SpecError
from streamcoord.pipelines import (
    CONDITION_VARIABLES,
    ExpressionError,
    ExpressionEvaluationError,
    compile_expression,
    compile_template,
)


def test_expression_reads_variables_and_string_extensions() -> None:
    expression = compile_expression("run_key.substring(0, 4) + '/' + event.data.dataset")
    assert expression.evaluate({"run_key": "2024-05-01", "event": {"data": {"dataset": "x"}}}) == (
        "2024/x"
    )


def test_namespaced_extension_and_comprehension_variables_are_allowed() -> None:
    expression = compile_expression(
        "math.greatest(event.data.sizes.map(s, s * 2))", variables={"event"}
    )
    assert expression.evaluate({"event": {"data": {"sizes": [1, 5, 3]}}}) == 10


def test_syntax_error_carries_source_and_position() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("event.data.x ==")
    assert caught.value.source == "event.data.x =="
    assert (caught.value.line, caught.value.column) == (1, 16)
    assert isinstance(caught.value, SpecError)


@pytest.mark.parametrize("source", ["now()", "now() > 1", "'a' + today()"])
def test_there_is_no_clock(source: str) -> None:
    with pytest.raises(ExpressionError, match="deterministic"):
        compile_expression(source)


def test_unknown_variable_gets_closest_name() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("evnt.id", variables={"event", "schedule"})
    assert caught.value.hint == "did you mean 'event'?"


def test_empty_expression_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="empty"):
        compile_expression("  ")


def test_evaluation_failure_is_typed() -> None:
    expression = compile_expression("event.data.missing + 1")
    with pytest.raises(ExpressionEvaluationError, match=r"event\.data\.missing"):
        expression.evaluate({"event": {"data": {}}})


def test_template_exactly_one_span_keeps_the_type() -> None:
    template = compile_template({"n": "${ 1 + 2 }", "list": "${ [1, 2] }", "b": "${ true }"})
    assert template.render({}) == {"n": 3, "list": [1, 2], "b": True}


def test_template_interpolates_text_recursively() -> None:
    template = compile_template(
        {"path": "s3://lake/${ pipeline }/${ run_key }/", "args": ["--n=${ 2 * 3 }", 7, None]},
        variables=CONDITION_VARIABLES,
    )
    rendered = template.render({"pipeline": "daily", "run_key": "2024-05-01"})
    assert rendered == {"path": "s3://lake/daily/2024-05-01/", "args": ["--n=6", 7, None]}
    assert len(template.expressions) == 3


def test_template_maps_with_braces_and_escaped_dollar() -> None:
    template = compile_template("${ {'a': 'x}y'}['a'] } costs $${price}")
    assert template.render({}) == "x}y costs ${price}"


def test_template_timestamps_render_as_rfc3339() -> None:
    template = compile_template("${ timestamp(run_key + 'T00:00:00Z') + duration('24h') }")
    assert template.render({"run_key": "2024-05-01"}) == "2024-05-02T00:00:00Z"


def test_template_error_points_into_the_whole_string() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_template("day=${ run_key.sustring(0, 4) }")
    assert caught.value.column == 16
    assert caught.value.hint == "did you mean 'substring'?"


def test_unclosed_span_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="never closed"):
        compile_template("x ${ run_key")


@given(st.text(alphabet=st.characters(blacklist_characters="$"), max_size=40))
def test_text_without_spans_renders_unchanged(text: str) -> None:
    assert compile_template(text).render({}) == text


@given(st.integers(-(2**40), 2**40), st.integers(-(2**40), 2**40))
def test_evaluation_is_deterministic(a: int, b: int) -> None:
    expression = compile_expression("a * 3 + b")
    results = {expression.evaluate({"a": a, "b": b}) for _ in range(3)}
    assert results == {a * 3 + b}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("!(1 in [1])", False),
        ("-size('abc')", -3),
        ("[5, 6][1] % 4", 2),
        ("has(event.retry) ? event.retry : 'none'", "none"),
        ("{'a': 1}.a == 1 || false", True),
    ],
)
def test_operators_are_not_mistaken_for_unknown_functions(source: str, expected: object) -> None:
    assert compile_expression(source).evaluate({"event": {}}) == expected
