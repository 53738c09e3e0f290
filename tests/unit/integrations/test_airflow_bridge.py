"""The asset event bridge's cursor: every asset event is sent once, in order, across restarts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streamcoord.events.models import CloudEvent
from streamcoord.integrations.airflow_bridge import AssetEventBridge

START = datetime(2024, 1, 1, tzinfo=UTC)


def asset_event(event_id: int, second: int) -> dict[str, Any]:
    return {
        "id": event_id, "asset_id": 1, "uri": "s3://lake/orders", "name": "orders",
        "group": "asset", "extra": {"rows": event_id}, "source_dag_id": "load",
        "source_task_id": "write", "source_run_id": f"run-{event_id}", "source_map_index": -1,
        "created_dagruns": [], "timestamp": (START + timedelta(seconds=second)).isoformat(),
        "partition_key": None,
    }  # fmt: skip


class FakeApi:
    """Airflow's ``GET /api/v2/assets/events`` over a list, as the real one filters and pages."""

    base_url = "http://airflow.test:8080"

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events

    async def asset_events(
        self, since: datetime | None, *, limit: int = 100, offset: int = 0,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:  # fmt: skip
        def stamp(e: dict[str, Any]) -> datetime:
            return datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))

        chosen = [e for e in self.events if since is None or stamp(e) >= since]
        chosen.sort(key=stamp, reverse=newest_first)
        return chosen[offset : offset + limit]


class Sent:
    def __init__(self) -> None:
        self.events: list[CloudEvent] = []

    async def send_many(self, events: Sequence[CloudEvent]) -> list[CloudEvent]:
        self.events += events
        return list(events)


def bridge(api: FakeApi, sent: Sent, cursor: Path, **options: Any) -> AssetEventBridge:
    return AssetEventBridge(api, sent, cursor, **options)  # type: ignore[arg-type]


async def test_events_after_the_start_are_sent_once_in_order_as_cloudevents(
    tmp_path: Path,
) -> None:
    api, sent = FakeApi([asset_event(1, 1)]), Sent()
    relay = bridge(api, sent, tmp_path / "cursor.json")
    assert await relay.poll_once() == 0  # what was there before the bridge is not sent
    api.events += [asset_event(2, 2), asset_event(3, 2), asset_event(4, 3)]
    assert await relay.poll_once() == 3
    assert await relay.poll_once() == 0
    assert [e.id for e in sent.events] == ["asset-event/2", "asset-event/3", "asset-event/4"]
    event = sent.events[0]
    assert event.type == "airflow.asset.updated"
    assert event.source == "airflow/airflow.test:8080"
    assert event.subject == "s3://lake/orders"
    assert event.data["source_run_id"] == "run-2"  # type: ignore[index]


async def test_a_restarted_bridge_goes_on_from_its_cursor(tmp_path: Path) -> None:
    api, sent = FakeApi([]), Sent()
    cursor = tmp_path / "cursor.json"
    await bridge(api, sent, cursor).poll_once()
    api.events += [asset_event(1, 1), asset_event(2, 1)]
    await bridge(api, sent, cursor).poll_once()
    api.events += [asset_event(3, 1), asset_event(4, 5)]  # one more at the same second
    await bridge(api, sent, cursor).poll_once()
    assert [e.id for e in sent.events] == [f"asset-event/{n}" for n in (1, 2, 3, 4)]


async def test_from_the_beginning_sends_the_backlog_page_by_page(tmp_path: Path) -> None:
    api, sent = FakeApi([asset_event(n, n // 3) for n in range(1, 251)]), Sent()
    relay = bridge(api, sent, tmp_path / "cursor.json", from_beginning=True)
    assert await relay.poll_once() == 250
    assert [e.id for e in sent.events] == [f"asset-event/{n}" for n in range(1, 251)]
