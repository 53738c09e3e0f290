"""The pipeline specs a coordinator runs: local files, or every version of the specs topic.

``streamcoord run PATH...`` runs local files (:class:`StaticSpecs`, one version). ``streamcoord
run`` with no path runs what ``streamcoord specs apply`` published on the compacted
``streamcoord.specs`` topic (:class:`SpecsFollower`): every version is loaded at start (the
newest is the default), and new ones are added while the coordinator runs. Which version a
partition decides with is part of its state and changes only at a ``streamcoord.specs.activate``
event in its log, so every member and every replay switches at the same offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import getpass
import logging
import os
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from streamcoord.core import DEFAULT_RETENTION, Catalog, CatalogSet
from streamcoord.errors import ConfigError, EventError, SpecError
from streamcoord.events.codec import decode, encode
from streamcoord.events.models import SpecsActivate, SpecsActivateData
from streamcoord.events.partitioning import anchor_key
from streamcoord.events.specs import SpecsRecord
from streamcoord.kafka.client import as_transport
from streamcoord.kafka.ports import TopicReader, Transport, TransportError
from streamcoord.kafka.records import read_topic
from streamcoord.pipelines.loader import spec_files
from streamcoord.pipelines.problem import Problem
from streamcoord.pipelines.validation import (
    DEFAULT_TOPICS_FILE,
    validate_paths,
    validate_texts,
)
from streamcoord.runtime.settings import TopicNames

__all__ = [
    "ACTIVATE_WAIT_S",
    "Applied",
    "SpecSource",
    "SpecsFollower",
    "SpecsUnavailable",
    "StaticSpecs",
    "activated_versions",
    "activation_events",
    "applied_by",
    "apply_specs",
    "catalog_of_record",
    "load_catalog",
    "publish_specs",
    "read_specs",
    "spec_texts",
    "version_of",
]

log = logging.getLogger(__name__)

#: How long a partition waits for a version it meets in an activate event but has not loaded.
ACTIVATE_WAIT_S = 30.0
_WHAT_TO_DO = (
    "this member stops instead of deciding on another version; if the version is missing, apply "
    "it again with `streamcoord specs apply`; if this member's code does not accept it, upgrade "
    "the member (or apply specs it accepts); then start the member again"
)


class SpecsUnavailable(SpecError):  # noqa: N818 - a state of the deployment, named as such
    """A partition needs a spec version this member cannot load: it stops, never decides on
    a stale version."""

    def __init__(self, version: str, reason: str, *, missing: bool = False) -> None:
        message = f"spec version {version} is not available here: {reason}"
        super().__init__(message, hint=_WHAT_TO_DO)
        self.version = version
        self.reason = reason
        #: True: the version never reached the specs topic (not this member's fault)
        self.missing = missing


def load_catalog(
    paths: Iterable[Path | str],
    *,
    topics_file: Path | str | None = DEFAULT_TOPICS_FILE,
    default_start_timeout_seconds: float | None = None,
    retention: timedelta = DEFAULT_RETENTION,
) -> Catalog:
    """Load and check specs (as `streamcoord validate` does); any problem stops here, listed.

    ``default_start_timeout_seconds``: see :meth:`Catalog.build` (the coordinator passes its
    setting of that name)."""
    report = validate_paths(paths, topics_file=topics_file)
    _raise_problems(
        report.problems, "the specs do not validate",
        "`streamcoord validate PATH...` shows the same list",
    )  # fmt: skip
    return Catalog.build(
        report.specs.pipelines,
        report.specs.pools,
        policies=report.specs.policies,
        default_start_timeout_seconds=default_start_timeout_seconds,
        retention=retention,
    )


def catalog_of_record(
    record: SpecsRecord,
    *,
    default_start_timeout_seconds: float | None = None,
    retention: timedelta = DEFAULT_RETENTION,
) -> Catalog:
    """The catalog a published version describes, checked by this member's own code.

    The topic check is left out: which topics a member's working directory declares says
    nothing about the version, and all members must accept the same versions.
    """
    report = validate_texts(record.files)
    _raise_problems(
        report.problems,
        f"spec version {record.version} does not validate",
        f"`streamcoord specs show {record.version}` prints its files",
    )
    catalog = Catalog.build(
        report.specs.pipelines,
        report.specs.pools,
        policies=report.specs.policies,
        default_start_timeout_seconds=default_start_timeout_seconds,
        retention=retention,
    )
    if catalog.version != record.version:
        # The published name is the one activate events and run records use; this member's code
        # hashes the same files otherwise (a newer release with new defaults): run them under it.
        log.warning(
            "spec version %s hashes to %s in this member's code; it runs under its published "
            "name", record.version, catalog.version,
        )  # fmt: skip
        catalog = dataclasses.replace(catalog, version=record.version)
    return catalog


def _raise_problems(problems: Sequence[Problem], what: str, hint: str) -> None:
    if problems:
        listing = "\n".join(str(problem) for problem in problems)
        raise SpecError(f"{what}:\n{listing}", hint=hint)


def spec_texts(paths: Iterable[Path | str]) -> dict[str, str]:
    """The spec files under ``paths`` by relative path, in the order `streamcoord validate`
    loads them: relative to the working directory when under it, else to the directory given
    (a file given outside it goes by its name)."""
    cwd = Path.cwd().resolve()
    texts: dict[str, str] = {}
    origin: dict[str, Path] = {}
    for given in (Path(p) for p in paths):
        root = given.resolve() if given.is_dir() else given.resolve().parent
        for file in spec_files([given]):
            resolved = file.resolve()
            name = resolved.relative_to(cwd if resolved.is_relative_to(cwd) else root).as_posix()
            if origin.setdefault(name, resolved) != resolved:
                raise ConfigError(
                    f"two spec files would be published as {name}: {origin[name]} and {resolved}",
                    hint="run the command from a directory that holds both, or rename one",
                )
            texts.setdefault(name, file.read_text(encoding="utf-8"))
    return texts


def applied_by() -> str:
    """``user@host`` of whoever runs the command."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container): the uid says enough
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


# ---- the topic ------------------------------------------------------------------------------


async def read_specs(client_kwargs: Mapping[str, Any], topics: TopicNames) -> list[SpecsRecord]:
    """Every published version, oldest first (a version applied again counts where it was last
    applied). Raises ``ConfigError`` if the topic does not exist."""
    contents = await read_topic(client_kwargs, topics.specs)
    if not contents.partitions:
        raise ConfigError(
            f"topic {topics.specs} does not exist", hint="create it with `streamcoord topics apply`"
        )
    latest: dict[str, SpecsRecord] = {}
    for stored in contents.records:
        if stored.value is None or stored.key is None:
            continue
        version = stored.key.decode()
        latest.pop(version, None)  # re-inserted: dict order becomes the order of last apply
        latest[version] = SpecsRecord.from_bytes(
            stored.value, where=f"{topics.specs}[{stored.partition}]@{stored.offset}"
        )
    return list(latest.values())


def activation_events(
    version: str, applied_at: datetime, partitions: int
) -> list[tuple[int, str, SpecsActivate]]:
    """One activate event per events partition: (partition, key, event).

    The key lands on the partition by Kafka's partitioner too (and rides in ``sckey``), so
    tools that re-key events by :func:`~streamcoord.core.partition_key_for` agree. Marked as
    broadcast copies, so the core does not forward them to the other partitions again.
    """
    events = []
    for partition in range(partitions):
        key = anchor_key(f"specs/{version}", partition, partitions)
        event = SpecsActivate(
            id=f"{version}/{applied_at.isoformat()}/{partition}",
            source="streamcoord/specs-apply",
            time=applied_at,
            data=SpecsActivateData(version=version),
            sckey=key,
            scbroadcast="1",  # each partition gets its own: the core forwards none
        )
        events.append((partition, key, event))
    return events


@dataclass(frozen=True)
class Applied:
    """What :func:`apply_specs` did."""

    version: str
    published: bool  # False: the version was already the newest (or only activated again)
    partitions: int  # events partitions it was activated on (0: nothing sent)
    previous: SpecsRecord | None  # the newest version before


def version_of(files: Mapping[str, str]) -> str:
    """The version of spec files given as texts; raises ``SpecError`` if they do not validate."""
    report = validate_texts(files)
    _raise_problems(
        report.problems, "the specs do not validate",
        "`streamcoord validate` shows them located in the files",
    )  # fmt: skip
    return Catalog.build(
        report.specs.pipelines, report.specs.pools, policies=report.specs.policies
    ).version


async def apply_specs(
    client_kwargs: Mapping[str, Any],
    topics: TopicNames,
    files: Mapping[str, str],
    version: str,
    *,
    message: str | None = None,
    force: bool = False,
    now: datetime | None = None,
) -> Applied:
    """Publish ``files`` (already validated, of ``version``) unless it is the newest version,
    and activate it on every events partition. ``force`` activates the newest one again."""
    history = await read_specs(client_kwargs, topics)
    newest = history[-1] if history else None
    is_newest = newest is not None and newest.version == version
    if is_newest and not force:
        return Applied(version, False, 0, newest)
    applied_at = now or datetime.now(UTC)
    record = None
    if not is_newest:
        record = SpecsRecord(
            version=version, applied_at=applied_at, applied_by=applied_by(), message=message,
            files=dict(files),
        )  # fmt: skip
    partitions = await publish_specs(client_kwargs, topics, record, activate=(version, applied_at))
    return Applied(version, record is not None, partitions, newest)


async def publish_specs(
    connection: Transport | Mapping[str, Any],
    topics: TopicNames,
    record: SpecsRecord | None,
    *,
    activate: tuple[str, datetime],
) -> int:
    """Publish ``record`` (unless None) to the specs topic, then one activate event to every
    partition of the events topic; returns the number of partitions.

    The record is acknowledged by every in-sync replica before any activate event is sent, so a
    member that meets the event can always find the version.
    """
    producer = as_transport(connection).producer()
    await producer.start()
    try:
        if record is not None:
            await producer.send(topics.specs, record.version.encode(), record.to_bytes())
        partitions = await producer.partition_count(topics.events)
        if not partitions:
            raise ConfigError(
                f"topic {topics.events} does not exist",
                hint="create it with `streamcoord topics apply`",
            )
        version, applied_at = activate
        sends = []
        for partition, anchor, event in activation_events(version, applied_at, partitions):
            value, headers = encode(event)
            sends.append(producer.send(
                topics.events, anchor.encode(), value, headers, partition=partition
            ))  # fmt: skip
        await asyncio.gather(*sends)
        return partitions
    finally:
        await producer.stop()


# ---- what a coordinator runs ---------------------------------------------------------------

_ACTIVATE_MARK = SpecsActivate.TYPE.encode()


def activated_versions(records: Sequence[Any]) -> list[str]:
    """The versions the activate events among ``records`` (Kafka records) name.

    Every batch passes through here, so the common case (no activate event) is two byte
    searches over the batch's values and header values joined: about 1/30 of what decoding a
    record costs. The type is in the value of a structured event and in the ``ce_type`` header
    of a binary one.
    """
    if _ACTIVATE_MARK not in b"\0".join([record.value or b"" for record in records]):
        headers = [value for record in records for _, value in record.headers or () if value]
        if _ACTIVATE_MARK not in b"\0".join(headers):
            return []
    versions: list[str] = []
    for record in records:
        value = record.value or b""
        if _ACTIVATE_MARK not in value and all(
            header != _ACTIVATE_MARK for _, header in record.headers or ()
        ):
            continue
        try:
            event = decode(value, list(record.headers or ()))
        except EventError:
            continue  # dead-lettered when it is decided
        if isinstance(event, SpecsActivate) and event.data.version not in versions:
            versions.append(event.data.version)
    return versions


class SpecSource(Protocol):
    """Where a coordinator's partitions get their catalogs."""

    def current(self) -> CatalogSet:
        """Every version loaded now (the partition processors take it at each batch)."""
        ...

    async def require(self, versions: Iterable[str]) -> CatalogSet:
        """A set holding ``versions``, waiting for them if need be; raises SpecsUnavailable."""
        ...

    async def for_batch(self, records: Sequence[Any]) -> CatalogSet:
        """The set to decide ``records`` (Kafka records) with: it holds every version their
        activate events name (see :meth:`require`)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class StaticSpecs:
    """Local spec files: one version, never another (an activate event for another version is
    refused by the core and dead-lettered: for development only)."""

    def __init__(self, catalogs: Catalog | CatalogSet) -> None:
        self._set = catalogs if isinstance(catalogs, CatalogSet) else CatalogSet.of(catalogs)

    def current(self) -> CatalogSet:
        return self._set

    async def require(self, versions: Iterable[str]) -> CatalogSet:
        return self._set

    async def for_batch(self, records: Sequence[Any]) -> CatalogSet:
        return self._set

    async def start(self) -> None:
        log.info("running local specs, version %s", self._set.default.version)

    async def stop(self) -> None:
        pass


@dataclass(frozen=True)
class _Loaded:
    record: SpecsRecord
    catalog: Catalog


class SpecsFollower:
    """Every version of the specs topic, read to its end at start and followed afterwards."""

    def __init__(
        self,
        connection: Transport | Mapping[str, Any],
        topics: TopicNames,
        *,
        wait_s: float = ACTIVATE_WAIT_S,
        read_deadline_s: float = 120.0,
        default_start_timeout_seconds: float | None = None,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self._transport = as_transport(connection)
        self._default_start_timeout_seconds = default_start_timeout_seconds
        self._retention = retention
        self._topic = topics.specs
        self._wait_s = wait_s
        self._read_deadline_s = read_deadline_s
        self._loaded: dict[str, _Loaded] = {}
        self._broken: dict[str, str] = {}  # version -> why this member cannot run it
        self._set: CatalogSet | None = None
        self._changed = asyncio.Event()
        self._consumer: TopicReader | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def newest(self) -> SpecsRecord | None:
        """The version last published (that this member could load)."""
        return next(reversed(self._loaded.values())).record if self._loaded else None

    def current(self) -> CatalogSet:
        if self._set is None:
            raise RuntimeError("SpecsFollower.start() was not awaited")
        return self._set

    async def start(self) -> None:
        """Read the topic to its end; raises ``SpecError`` if it holds no version this member
        can run. Then follow it in the background."""
        consumer = self._transport.topic_reader(self._topic)
        await consumer.start()
        try:
            await self._read_to_end(consumer)
        except BaseException:
            await consumer.stop()
            raise
        newest = self.newest
        if newest is None:
            await consumer.stop()
            content = (
                f"holds {len(self._broken)} versions and none loads here (errors above)"
                if self._broken
                else "is empty"
            )
            raise SpecError(
                f"no spec version to run: the specs topic {self._topic} {content}",
                hint="publish the specs with `streamcoord specs apply PATH...` (or run local "
                "files: `streamcoord run PATH...`)",
            )
        self._consumer = consumer
        log.info(
            "loaded %d spec versions from %s; newest %s (applied %s by %s%s)",
            len(self._loaded), self._topic, newest.version, newest.applied_at.isoformat(),
            newest.applied_by, f": {newest.message}" if newest.message else "",
        )  # fmt: skip
        self._task = asyncio.create_task(self._follow(consumer), name="specs follower")

    async def _read_to_end(self, consumer: TopicReader) -> None:
        started = time.monotonic()
        while not await consumer.caught_up():
            if time.monotonic() - started > self._read_deadline_s:
                raise TimeoutError(f"reading {self._topic} took over {self._read_deadline_s:.0f}s")
            self._take(await consumer.fetch(timeout_ms=500))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            self._consumer = None

    async def require(self, versions: Iterable[str]) -> CatalogSet:
        """Wait (up to ``wait_s``) until every version is loaded; a version that arrived but
        cannot be loaded, or did not arrive in time, raises :class:`SpecsUnavailable`."""
        deadline = time.monotonic() + self._wait_s
        for version in versions:
            while version not in self.current().versions:
                if version in self._broken:
                    raise SpecsUnavailable(version, self._broken[version])
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SpecsUnavailable(
                        version,
                        f"it is not on the specs topic {self._topic} (waited {self._wait_s:.0f}s "
                        "after an activate event named it)",
                        missing=True,
                    )
                log.info("waiting up to %.0fs for spec version %s", remaining, version)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
        return self.current()

    async def for_batch(self, records: Sequence[Any]) -> CatalogSet:
        return await self.require(activated_versions(records))

    async def _follow(self, consumer: TopicReader) -> None:
        try:
            await self._follow_forever(consumer)
        except Exception:  # a bug: say so, partitions then fail on the versions they wait for
            log.exception("following %s stopped; versions published from now on are missed",
                          self._topic)  # fmt: skip
            raise

    async def _follow_forever(self, consumer: TopicReader) -> None:
        while True:
            try:
                batch = await consumer.fetch(timeout_ms=1000)
            except TransportError as exc:  # the consumer reconnects by itself; keep asking
                log.warning("following %s: %s", self._topic, exc)
                await asyncio.sleep(1.0)  # a pause between attempts, not a wait for an event
                continue
            for version in self._take(batch):
                record = self._loaded[version].record
                log.info(
                    "spec version %s published (applied %s by %s%s); %d versions loaded",
                    version, record.applied_at.isoformat(), record.applied_by,
                    f": {record.message}" if record.message else "", len(self._loaded),
                )  # fmt: skip

    def _take(self, batch: Mapping[Any, Sequence[Any]]) -> list[str]:
        """Load the records of a fetch; the versions loaded (waiters learn of broken ones too)."""
        loaded: list[str] = []
        for records in batch.values():
            for message in records:
                if message.key is None or message.value is None:
                    continue  # a tombstone: runs may still need the version, keep it
                version = message.key.decode()
                if self._load(version, message.value, message.offset):
                    loaded.append(version)
        if any(batch.values()):
            self._publish()
        return loaded

    def _load(self, version: str, value: bytes, offset: int) -> bool:
        try:
            record = SpecsRecord.from_bytes(value, where=f"{self._topic}@{offset}")
            catalog = self._loaded[version].catalog if version in self._loaded else None
            catalog = catalog or catalog_of_record(
                record,
                default_start_timeout_seconds=self._default_start_timeout_seconds,
                retention=self._retention,
            )
        except (ConfigError, SpecError) as exc:
            reason = exc.message.removeprefix(f"spec version {version} ")
            reason = reason.replace(":\n", ": ").replace("\n", "; ")
            if self._broken.get(version) != reason:
                log.error(  # noqa: TRY400 - the reason says it all; a traceback would not help
                    "spec version %s cannot be loaded by this member: %s", version, reason
                )
            self._broken[version] = reason
            self._loaded.pop(version, None)
            return False
        self._broken.pop(version, None)
        self._loaded.pop(version, None)  # applied again: it is the newest now
        self._loaded[version] = _Loaded(record, catalog)
        return True

    def _publish(self) -> None:
        if self._loaded:
            default = next(reversed(self._loaded.values())).catalog
            self._set = CatalogSet(
                default=default,
                versions={version: loaded.catalog for version, loaded in self._loaded.items()},
            )
        self._changed.set()
        self._changed = asyncio.Event()  # waiters hold the one that fired
