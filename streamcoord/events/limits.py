"""What one record may hold (:class:`DecodeLimits`), checked before anything deeper than a JSON
parse looks at it (size, nesting, string length, attribute count), so no later step meets input
that only fails deep inside a serializer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from streamcoord.events.decode_errors import EventDecodeError

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_BYTES",
    "DecodeLimits",
    "may_exceed",
    "string_too_long",
    "walk",
]

#: Kafka's default ``message.max.bytes`` is about 1 MiB; an event larger than that is a mistake.
DEFAULT_MAX_BYTES: Final = 1024 * 1024


@dataclass(frozen=True)
class DecodeLimits:
    """What one record may hold; a record over a limit is refused before it is validated."""

    #: value plus header names and values, in bytes
    max_bytes: int = DEFAULT_MAX_BYTES
    #: how deeply JSON arrays and objects may nest (a structured event's envelope is level 1,
    #: binary-mode data level 1): deeper data would fail later, in a serializer
    max_depth: int = 64
    #: characters in any one string: attribute, header, object key or string in data (binary
    #: data and ``data_base64`` are bounded by ``max_bytes`` only)
    max_string: int = 65_536
    #: attributes of a structured event; headers of a record
    max_attributes: int = 64


DEFAULT_LIMITS: Final = DecodeLimits()


def may_exceed(value: bytes, limits: DecodeLimits) -> bool:
    """Whether the JSON ``value`` could nest too deep or hold too long a string: only one with
    enough brackets or bytes can, so most values are never walked."""
    return len(value) > limits.max_string or (
        value.count(b"[") + value.count(b"{") > limits.max_depth
    )


def walk(parsed: Any, limits: DecodeLimits, skip: str = "") -> None:
    """Refuse ``parsed`` if it nests too deep or holds too long a string (``skip``: a top-level
    key whose value is not looked at)."""
    # iterative: a recursive walk would hit Python's recursion limit on the input it refuses
    stack: list[tuple[Any, int]] = [(parsed, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if len(node) > limits.max_string:
                raise string_too_long("a string", len(node), limits)
            continue
        if not isinstance(node, dict | list):
            continue
        if depth > limits.max_depth:
            raise EventDecodeError(
                "too_deep",
                f"JSON nests deeper than the limit of {limits.max_depth} levels",
                hint="flatten the data or send it by reference",
            )
        if isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
            continue
        for key, item in node.items():
            if len(key) > limits.max_string:
                raise string_too_long("an object key", len(key), limits)
            if not (depth == 1 and key == skip):
                stack.append((item, depth + 1))


def string_too_long(what: str, length: int, limits: DecodeLimits) -> EventDecodeError:
    """The error for a string (``what``) of ``length`` characters over ``limits.max_string``."""
    return EventDecodeError(
        "string_too_long",
        f"{what} of {length} characters exceeds the limit of {limits.max_string}",
        hint="send large payloads by reference (a URI in data), not inline",
    )
