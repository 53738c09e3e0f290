"""Restoring one partition's state, and its consumed position, from the compacted changelog topic.

Besides the core's state, each changelog partition holds one runtime record under
:data:`POSITION_KEY`: the next offsets to consume of the partition's two inputs, the public events
topic and the internal topic. It is written in the same transaction as the state and the outputs
of a batch, so they always agree, and a transaction needs no ``AddOffsetsToTxn``/
``TxnOffsetCommit`` round trips to the group coordinator. A position written before the internal
topic existed (state format 5 and older) names only the events offset.

The store (:class:`~streamcoord.kafka.ports.ChangelogStore`) reads the partition up to its last
stable offset.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from streamcoord.kafka.ports import ChangelogStore

__all__ = [
    "POSITION_KEY",
    "Positions",
    "RestoredChangelog",
    "position_value",
    "read_changelog",
    "state_items",
]

#: Changelog key of the partition's consumed position (``~`` sorts after and never clashes with
#: the core's ``run/``, ``pool/`` ... keys).
POSITION_KEY = "~position"


@dataclass(frozen=True)
class Positions:
    """The next offset to consume of each input of one partition (None: never committed).

    ``legacy_until``: events offsets below it were written while coordinators of a release
    without the internal topic ran, which sent their own messages on the events topic; they
    are admitted as such (see docs/deploy.md, upgrading). ``older_release``: read from a
    position record such a release wrote.
    """

    events: int | None = None
    internal: int | None = None
    legacy_until: int | None = None
    older_release: bool = False

    def value(self) -> bytes:
        """The changelog value: every record before these offsets is taken care of."""
        body: dict[str, int | None] = {"next_offset": self.events, "internal_next": self.internal}
        if self.legacy_until is not None:
            body["legacy_until"] = self.legacy_until
        return orjson.dumps(body)

    def after(self, events: int | None, internal: int | None) -> Positions:
        """These positions moved on to ``events`` and ``internal``; the legacy range is
        forgotten once passed."""
        legacy = self.legacy_until
        if legacy is not None and events is not None and events >= legacy:
            legacy = None
        return Positions(events, internal, legacy)

    @classmethod
    def parse(cls, raw: bytes) -> Positions:
        body = orjson.loads(raw)
        events, internal = body.get("next_offset"), body.get("internal_next")
        legacy = body.get("legacy_until")
        return cls(
            None if events is None else int(events),
            None if internal is None else int(internal),
            None if legacy is None else int(legacy),
            older_release="internal_next" not in body,
        )


def position_value(next_offset: int, internal_next: int | None = None) -> bytes:
    """The changelog value recording what is consumed: events before ``next_offset``, internal
    records before ``internal_next``."""
    return Positions(next_offset, internal_next).value()


def state_items(items: Iterable[tuple[str, bytes | None]]) -> list[tuple[str, bytes | None]]:
    """Changelog records without the runtime's position record: what the core's state loads."""
    return [(key, value) for key, value in items if key != POSITION_KEY]


@dataclass(frozen=True)
class RestoredChangelog:
    items: dict[str, bytes]
    records: int
    seconds: float
    #: The next offsets to consume; None each where no batch was ever committed.
    positions: Positions = Positions()

    @property
    def position(self) -> int | None:
        """The next events offset to consume."""
        return self.positions.events


async def read_changelog(
    store: ChangelogStore, partition: int, *, deadline_s: float = 300.0
) -> RestoredChangelog:
    """The last value of every live key in one changelog partition, up to the stable end."""
    started = time.monotonic()
    contents = await store.read(partition, deadline_s=deadline_s)
    items = dict(contents.items)
    raw = items.pop(POSITION_KEY, None)
    positions = Positions() if raw is None else Positions.parse(raw)
    return RestoredChangelog(items, contents.records, time.monotonic() - started, positions)
