"""Spec versions without a broker: records, naming files, activate events, and how a follower
hands out versions (waiting for one an activate event names, refusing one it cannot load)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streamcoord.core import Catalog, CatalogSet, partition_for, partition_key_for
from streamcoord.errors import ConfigError, SpecError
from streamcoord.events.codec import EncodeMode, encode
from streamcoord.events.models import ExternalEvent, ScheduleTick, SpecsActivate
from streamcoord.events.specs import SpecsRecord
from streamcoord.pipelines import validate_texts
from streamcoord.runtime import CoordinatorSettings, TopicNames
from streamcoord.runtime.specs import (
    SpecsFollower,
    SpecsUnavailable,
    StaticSpecs,
    activated_versions,
    activation_events,
    catalog_of_record,
    spec_texts,
    version_of,
)
from streamcoord.runtime.time_events import TimeEvents

ONE = """\
pipelines:
  - name: one
    triggers: [{kind: event, type: a.b}]
    stages: [{name: s}]
"""
TWO = ONE.replace("name: s}", "name: s}, {name: t, needs: [s]}")
BROKEN = ONE.replace("name: one", "name: two").replace("name: s}", "name: s, needs: [x]}")
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def record(text: str, *, version: str | None = None, name: str = "p.yaml") -> SpecsRecord:
    files = {name: text}
    return SpecsRecord(
        version=version or version_of(files), applied_at=AT, applied_by="ana@ops", files=files
    )


class _Message:
    def __init__(self, key: str | None, value: bytes | None, offset: int = 0) -> None:
        self.key = None if key is None else key.encode()
        self.value = value
        self.offset = offset
        self.headers: list[tuple[str, bytes]] = []


def fetched(*records: SpecsRecord) -> dict[str, list[Any]]:
    return {"tp": [_Message(r.version, r.to_bytes(), n) for n, r in enumerate(records)]}


def test_texts_validate_like_files_and_problems_name_file_and_line() -> None:
    report = validate_texts({"a.yaml": ONE, "dir/b.yaml": BROKEN})
    assert [p.name for p in report.specs.pipelines] == ["one", "two"]
    assert [(p.file, p.line) for p in report.problems] == [("dir/b.yaml", 4)]
    assert "unknown stage 'x'" in report.problems[0].message


def test_a_record_round_trips_and_garbage_says_where() -> None:
    published = record(ONE, name="specs/one.yaml")
    assert SpecsRecord.from_bytes(published.to_bytes()) == published
    with pytest.raises(ConfigError, match=r"^t@3: not a specs record"):
        SpecsRecord.from_bytes(b"{}", where="t@3")


def test_a_record_rebuilds_its_catalog_and_a_broken_one_names_version_file_and_line() -> None:
    assert catalog_of_record(record(ONE)).version == version_of({"p.yaml": ONE})
    broken = record(BROKEN, version="sha256:0000")
    with pytest.raises(SpecError, match=r"spec version sha256:0000 does not validate:\np.yaml:4:"):
        catalog_of_record(broken)


def test_a_version_hashed_otherwise_by_this_code_runs_under_its_published_name() -> None:
    assert catalog_of_record(record(ONE, version="sha256:published")).version == (
        "sha256:published"
    )


def test_files_are_named_relative_to_the_directory_given(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.yaml").write_text(ONE)
    (tmp_path / "a" / "notes.txt").write_text("not a spec")
    (tmp_path / "y.yaml").write_text(TWO)
    assert spec_texts([tmp_path / "a", tmp_path / "y.yaml"]) == {"x.yaml": ONE, "y.yaml": TWO}
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.yaml").write_text(TWO)
    with pytest.raises(ConfigError, match=r"two spec files would be published as x\.yaml"):
        spec_texts([tmp_path / "a", tmp_path / "b"])


def test_one_activate_event_per_partition_keyed_onto_it() -> None:
    events = activation_events("sha256:1", AT, 8)
    assert [partition for partition, _, _ in events] == list(range(8))
    for partition, key, event in events:
        assert partition_for(key, 8) == partition
        assert partition_key_for(event) == key
        assert event.data.version == "sha256:1"
    assert len({event.id for _, _, event in events}) == 8


def test_activated_versions_finds_activate_events_among_records() -> None:
    def kafka_record(event: Any, mode: EncodeMode = "structured") -> _Message:
        message = _Message(None, None)
        message.value, message.headers = encode(event, mode)
        return message

    (_, _, first), (_, _, second) = activation_events("sha256:1", AT, 2)
    ((_, _, binary),) = activation_events("sha256:2", AT, 1)
    other = ExternalEvent(id="1", source="s", type="a.b", data={"v": "streamcoord.specs.activate"})
    records = [kafka_record(other), kafka_record(first), kafka_record(second), _Message(None, None)]
    assert activated_versions(records) == ["sha256:1"]
    assert activated_versions([kafka_record(other)]) == []
    assert activated_versions([kafka_record(binary, "binary")]) == ["sha256:2"]
    assert isinstance(first, SpecsActivate)


async def test_local_specs_are_one_version() -> None:
    catalog = Catalog.build([])
    source = StaticSpecs(catalog)
    assert source.current() == CatalogSet.of(catalog)
    assert await source.require(["sha256:other"]) is source.current()


async def test_the_newest_version_is_the_default_and_every_version_stays_loaded() -> None:
    specs = SpecsFollower({}, TopicNames())
    one, two = record(ONE), record(TWO)
    specs._take(fetched(one, two))
    assert specs.current().default.version == two.version
    assert set(specs.current().versions) == {one.version, two.version}
    specs._take(fetched(one))  # applied again: the newest once more
    assert specs.current().default.version == one.version
    assert specs.newest == one


async def test_a_partition_waits_for_a_version_until_the_follower_reads_it() -> None:
    specs = SpecsFollower({}, TopicNames(), wait_s=30)
    one, two = record(ONE), record(TWO)
    specs._take(fetched(one))
    waiting = asyncio.create_task(specs.require([two.version]))
    await asyncio.sleep(0)  # let it start waiting
    assert not waiting.done()
    specs._take(fetched(two))
    assert two.version in (await asyncio.wait_for(waiting, 5)).versions


async def test_a_version_that_does_not_load_or_never_comes_is_refused_with_the_reason() -> None:
    specs = SpecsFollower({}, TopicNames(prefix="t."), wait_s=0.05)
    specs._take(fetched(record(ONE)))
    bad = record("pipelines: 3\n", version="sha256:bad")
    waiting = asyncio.create_task(specs.require(["sha256:bad"]))
    await asyncio.sleep(0)
    specs._take(fetched(bad))
    with pytest.raises(SpecsUnavailable, match=r"sha256:bad is not available here: .*p\.yaml") as e:
        await waiting
    assert "upgrade the member" in e.value.hint
    with pytest.raises(SpecsUnavailable, match=r"not on the specs topic t\.streamcoord\.specs"):
        await specs.require(["sha256:never"])


class _Changing:
    """A spec source whose newest version the test replaces."""

    def __init__(self, catalog: Catalog) -> None:
        self.set = CatalogSet.of(catalog)

    def current(self) -> CatalogSet:
        return self.set

    async def require(self, versions: Any) -> CatalogSet:
        return self.set

    async def for_batch(self, records: Any) -> CatalogSet:
        return self.set

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def scheduled(*crons: tuple[str, str]) -> Catalog:
    text = "pipelines:\n" + "".join(
        f"  - name: {name}\n    triggers: [{{kind: schedule, cron: '{cron}'}}]\n"
        "    stages: [{name: s}]\n"
        for name, cron in crons
    )
    loaded = validate_texts({"s.yaml": text})
    assert not loaded.problems, loaded.problems
    return Catalog.build(loaded.specs.pipelines)


def test_owned_schedules_follow_the_newest_version() -> None:
    source = _Changing(
        scheduled(("kept", "0 * * * *"), ("moved", "0 1 * * *"), ("gone", "5 * * * *"))
    )
    time_events = TimeEvents(CoordinatorSettings(), lambda: source.current().default, lambda: None)
    time_events.partitions = 1
    time_events.start()
    time_events.own({0}, datetime.now(UTC))
    source.set = CatalogSet.of(
        scheduled(("kept", "0 * * * *"), ("moved", "0 2 * * *"), ("new", "30 * * * *"))
    )
    time_events.follow({0})
    due = time_events.due([], datetime.now(UTC) + timedelta(days=1))
    ticks = [t for t in due if isinstance(t, ScheduleTick)]
    assert len(ticks) == len(due)
    times = {(t.data.pipeline, t.data.scheduled_time.minute) for t in ticks}
    assert {pipeline for pipeline, _ in times} == {"kept", "moved", "new"}  # "gone" is gone
    assert {t.data.scheduled_time.hour for t in ticks if t.data.pipeline == "moved"} == {2}
    assert ("new", 30) in times


def test_policies_are_published_with_the_specs_and_change_their_version() -> None:
    policy = "policies:\n  - {kind: contract, name: ab, type: a.b, schema: {type: object}}\n"
    guarded = record(ONE + policy, name="specs/one.yaml")
    assert guarded.version != version_of({"p.yaml": ONE})
    catalog = catalog_of_record(SpecsRecord.from_bytes(guarded.to_bytes()))
    assert catalog.version == guarded.version
    assert [c.name for c in catalog.policies.contracts["a.b"]] == ["ab"]
