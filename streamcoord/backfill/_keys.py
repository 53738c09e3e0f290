"""The partition keys of a backfill range: every day or hour from one key to another."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from streamcoord.errors import ConfigError

__all__ = ["Grain", "order_keys", "partition_keys"]

Grain = Literal["daily", "hourly"]
_FORMATS: dict[Grain, tuple[str, timedelta]] = {
    "daily": ("%Y-%m-%d", timedelta(days=1)),
    "hourly": ("%Y-%m-%dT%H", timedelta(hours=1)),
}
#: A range longer than this is a typo more often than a plan.
MAX_KEYS = 100_000


def partition_keys(first: str, last: str, grain: Grain | None = None) -> list[str]:
    """Every key from ``first`` to ``last`` inclusive, lowest first; the grain is the keys' own
    format (``2026-01-31``: daily, ``2026-01-31T05``: hourly) unless given."""
    grain = grain or ("hourly" if "T" in first else "daily")
    text, step = _FORMATS[grain]
    start, end = _parse(first, text, grain), _parse(last, text, grain)
    if end < start:
        raise ConfigError(
            f"the range ends ({last}) before it starts ({first})", hint="give --from the lower key"
        )
    count = int((end - start) / step) + 1
    if count > MAX_KEYS:
        raise ConfigError(
            f"{first}..{last} holds {count} {grain} keys, over {MAX_KEYS}",
            hint="split the backfill",
        )
    return [(start + i * step).strftime(text) for i in range(count)]


def order_keys(keys: list[str], order: Literal["lowest", "newest"]) -> list[str]:
    """``keys`` without repeats, lowest first or newest (highest) first."""
    unique = sorted(set(keys))
    return unique if order == "lowest" else unique[::-1]


def _parse(key: str, text: str, grain: str) -> datetime:
    try:
        return datetime.strptime(key, text)  # noqa: DTZ007  # keys are names, not instants
    except ValueError:
        example = datetime(2026, 1, 31, 5).strftime(text)  # noqa: DTZ001
        raise ConfigError(
            f"{key!r} is not a {grain} key", hint=f"write it like {example}"
        ) from None
