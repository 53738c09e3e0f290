"""Airflow asset events as streamcoord events: a bridge that polls Airflow's REST API.

Every asset event Airflow records (a task with ``outlets`` succeeded, or someone posted one)
becomes a CloudEvent on streamcoord's events topic, so a pipeline can start when an Airflow DAG
updated an asset::

    triggers:
      - kind: event
        type: airflow.asset.updated
        subject: "s3://lake/orders"          # the asset's URI

The event: ``type`` :data:`ASSET_EVENT_TYPE`, ``source`` ``airflow/<host>``, ``id``
``asset-event/<id>``, ``subject`` the asset's URI, ``time`` when Airflow recorded it, ``data``
the asset event as Airflow's API gives it (``uri``, ``name``, ``group``, ``asset_id``,
``extra``, ``source_dag_id``, ``source_task_id``, ``source_run_id``, ``source_map_index``,
``timestamp``, ``partition_key``).

Delivery: events are sent in Airflow's order and acknowledged by the broker before the bridge's
cursor (the last timestamp and the ids seen at it, in a JSON file) moves past them: at least
once. After a crash between the two, the same events are sent again with the same ids. A bridge
started without a cursor file begins after the newest event (``from_beginning`` sends all).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import orjson

from streamcoord.events.factory import make_event
from streamcoord.events.models import CloudEvent
from streamcoord.integrations.airflow_api import AirflowApiError, AirflowClient

__all__ = ["ASSET_EVENT_TYPE", "AssetEventBridge", "BridgeCursor", "asset_cloud_event"]

log = logging.getLogger(__name__)

ASSET_EVENT_TYPE: Final = "airflow.asset.updated"
_PAGE: Final = 100
_MAX_PAGES: Final = 100  # per poll: a backlog is worked off over several polls


class EventSender(Protocol):
    """Where bridged events go (:class:`streamcoord.emit.Emitter`)."""

    async def send_many(self, events: Sequence[CloudEvent]) -> list[CloudEvent]: ...


@dataclass
class BridgeCursor:
    """How far the bridge got: the newest timestamp sent and the event ids sent at it."""

    timestamp: datetime | None = None
    ids: set[int] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path) -> BridgeCursor | None:
        if not path.is_file():
            return None
        data = orjson.loads(path.read_bytes())
        stamp = data.get("timestamp")
        return cls(
            datetime.fromisoformat(stamp) if stamp else None, {int(i) for i in data.get("ids", [])}
        )

    def save(self, path: Path) -> None:
        data = {
            "timestamp": self.timestamp.isoformat() if self.timestamp else None,
            "ids": sorted(self.ids),
        }
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(orjson.dumps(data))
        temporary.replace(path)  # atomic: a crash leaves the old cursor or the new one

    def is_new(self, event: dict[str, Any]) -> bool:
        stamp = _timestamp(event)
        if self.timestamp is None or stamp > self.timestamp:
            return True
        return stamp == self.timestamp and int(event["id"]) not in self.ids

    def advance(self, event: dict[str, Any]) -> None:
        stamp = _timestamp(event)
        if self.timestamp is None or stamp > self.timestamp:
            self.timestamp, self.ids = stamp, set()
        self.ids.add(int(event["id"]))


def asset_cloud_event(
    event: dict[str, Any], *, source: str, event_type: str = ASSET_EVENT_TYPE
) -> CloudEvent:
    """The CloudEvent for one asset event of Airflow's API."""
    data = {key: value for key, value in event.items() if key != "created_dagruns"}
    return make_event(
        event_type,
        source,
        data,
        id=f"asset-event/{event['id']}",
        subject=str(event.get("uri") or event.get("name") or ""),
        time=_timestamp(event),
    )


class AssetEventBridge:
    """Polls one Airflow for asset events and sends each new one to streamcoord."""

    def __init__(
        self,
        client: AirflowClient,
        sender: EventSender,
        cursor_path: Path,
        *,
        interval_s: float = 5.0,
        from_beginning: bool = False,
        event_type: str = ASSET_EVENT_TYPE,
    ) -> None:
        self.client = client
        self.sender = sender
        self.cursor_path = cursor_path
        self.interval_s = interval_s
        self.from_beginning = from_beginning
        self.event_type = event_type
        self.source = f"airflow/{urlsplit(client.base_url).netloc or client.base_url}"
        self.sent = 0
        self._cursor: BridgeCursor | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; a failed poll is logged and tried again next interval."""
        while not stop.is_set():
            try:
                await self.poll_once()
            except AirflowApiError as error:
                log.warning("polling Airflow failed: %s", error, extra={"retrying": True})
            with contextlib.suppress(TimeoutError):  # the interval passed: poll again
                await asyncio.wait_for(stop.wait(), self.interval_s)

    async def poll_once(self) -> int:
        """Send the asset events Airflow recorded since the cursor; returns how many."""
        cursor = await self._load_cursor()
        sent = 0
        for _ in range(_MAX_PAGES):
            # Oldest first from the cursor's timestamp; the events at it were sent: skip them.
            page = await self.client.asset_events(
                cursor.timestamp, limit=_PAGE, offset=len(cursor.ids)
            )
            fresh = [event for event in page if cursor.is_new(event)]
            if fresh:
                await self.sender.send_many(
                    [asset_cloud_event(e, source=self.source, event_type=self.event_type)
                     for e in fresh]
                )  # fmt: skip
                for event in fresh:
                    cursor.advance(event)
                cursor.save(self.cursor_path)
                sent += len(fresh)
            if len(page) < _PAGE:
                break
        self.sent += sent
        return sent

    async def _load_cursor(self) -> BridgeCursor:
        if self._cursor is not None:
            return self._cursor
        cursor = BridgeCursor.load(self.cursor_path)
        if cursor is None:
            cursor = BridgeCursor()
            if not self.from_beginning:  # start after the newest events Airflow has now
                newest = await self.client.asset_events(None, limit=_PAGE, newest_first=True)
                latest = max((_timestamp(e) for e in newest), default=None)
                for event in reversed(newest):
                    if _timestamp(event) == latest:
                        cursor.advance(event)
            cursor.save(self.cursor_path)
        self._cursor = cursor
        return cursor


def _timestamp(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))
