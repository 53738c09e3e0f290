"""Dead letters: what the coordinator could not accept, kept whole with the reason attached."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["DeadLetter", "dead_letter_headers"]

HEADER_PREFIX = "streamcoord.dlq."


@dataclass(frozen=True)
class DeadLetter:
    """Why one consumed record was refused, and where it came from."""

    reason: str  # a stable code scripts can match on, e.g. "not_json" or "unknown_run"
    message: str  # for people: what is wrong and what to do
    topic: str
    partition: int
    offset: int
    policy: str = ""  # the policy that rejected the record, if one did


def dead_letter_headers(
    letter: DeadLetter, original: Sequence[tuple[str, bytes]]
) -> list[tuple[str, bytes]]:
    """The original headers, then the reason and the origin (topic, partition, offset)."""
    ours = {
        "reason": letter.reason,
        "error": letter.message[:2000],
        "topic": letter.topic,
        "partition": str(letter.partition),
        "offset": str(letter.offset),
        **({"policy": letter.policy} if letter.policy else {}),
    }
    return [*original, *((HEADER_PREFIX + k, v.encode()) for k, v in ours.items())]
