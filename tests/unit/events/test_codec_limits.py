"""The decoder's limits: a record over one is refused with its own reason before validation."""

from __future__ import annotations

import base64

import orjson
import pytest

from streamcoord.events.codec import DEFAULT_LIMITS, DecodeLimits, EventDecodeError, decode

ENVELOPE = {"specversion": "1.0", "id": "1", "source": "s", "type": "x"}
BINARY = [("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", b"x")]


def _structured(**attributes: object) -> bytes:
    return orjson.dumps({**ENVELOPE, **attributes})


def _nested(levels: int) -> bytes:
    return b"[" * levels + b"1" + b"]" * levels


def _reason(value: bytes, headers: list[tuple[str, bytes]] = [], **limits: int) -> str:  # noqa: B006
    with pytest.raises(EventDecodeError) as caught:
        decode(value, headers, limits=DecodeLimits(**limits))  # type: ignore[arg-type]
    return caught.value.reason


def test_the_defaults_are_the_documented_ones() -> None:
    assert (
        DecodeLimits(max_bytes=1024 * 1024, max_depth=64, max_string=65_536, max_attributes=64)
        == DEFAULT_LIMITS
    )


def test_data_nested_beyond_the_depth_limit_is_too_deep_in_both_modes() -> None:
    structured = _structured()[:-1] + b',"data":' + _nested(300) + b"}"
    assert _reason(structured) == "too_deep"
    assert _reason(_nested(300), [*BINARY, ("content-type", b"application/json")]) == "too_deep"


def test_nesting_up_to_the_limit_is_accepted() -> None:
    # the envelope is level 1: data may nest max_depth - 1 levels in structured mode
    event = decode(
        _structured()[:-1] + b',"data":' + _nested(7) + b"}", limits=DecodeLimits(max_depth=8)
    )
    assert event.data is not None
    assert decode(_nested(8), BINARY, limits=DecodeLimits(max_depth=8)).data is not None
    assert _reason(_nested(9), BINARY, max_depth=8) == "too_deep"


def test_many_flat_brackets_are_not_depth() -> None:
    flat = orjson.dumps([[i] for i in range(500)])
    assert decode(flat, BINARY, limits=DecodeLimits(max_depth=8)).data[499] == [499]


@pytest.mark.parametrize("where", ["attribute", "data", "key", "header"])
def test_a_string_over_the_limit_is_refused_wherever_it_is(where: str) -> None:
    long = "x" * 2000
    value = {
        "attribute": _structured(subject=long),
        "data": _structured(data={"a": [long]}),
        "key": _structured(data={long: 1}),
        "header": _structured(),
    }[where]
    headers = [("traceparent", long.encode())] if where == "header" else []
    assert _reason(value, headers, max_string=1000) == "string_too_long"


def test_data_base64_is_bounded_by_the_size_limit_only() -> None:
    blob = bytes(range(256)) * 20
    value = _structured(data_base64=base64.b64encode(blob).decode())
    assert decode(value, limits=DecodeLimits(max_string=1000)).data == blob


def test_too_many_attributes_or_headers_are_refused() -> None:
    extensions = {f"ext{i}": "v" for i in range(70)}
    assert _reason(_structured(**extensions)) == "too_many_attributes"
    headers = [*BINARY, *((f"h{i}", b"v") for i in range(70))]
    assert _reason(b"", headers) == "too_many_attributes"


def test_non_utf8_json_data_in_binary_mode_is_not_utf8() -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode(b"\xff\xfe{}", [*BINARY, ("content-type", b"application/json")])
    assert caught.value.reason == "not_utf8"
    assert "not UTF-8" in caught.value.message


def test_non_utf8_binary_data_of_another_content_type_stays_bytes() -> None:
    event = decode(b"\xff\xfe", [*BINARY, ("content-type", b"application/octet-stream")])
    assert event.data == b"\xff\xfe"


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"1e400"])
def test_numbers_json_has_not_are_not_json(number: bytes) -> None:
    assert _reason(_structured()[:-1] + b',"data":' + number + b"}") == "not_json"


@pytest.mark.parametrize("kind", [{"a": 1}, ["x"], 5, None])
def test_a_type_that_is_not_a_string_is_an_invalid_attribute(kind: object) -> None:
    # found by the atheris target: an object as type made the union's discriminator raise
    assert _reason(orjson.dumps({**ENVELOPE, "type": kind})) == "invalid_attribute"
