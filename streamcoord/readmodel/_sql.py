"""The store on SQLAlchemy Core: one implementation for SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

# private on purpose: the read model must name the very span ids the coordinator exports
from streamcoord.core._tracing import attempt_span_id
from streamcoord.errors import ConfigError
from streamcoord.readmodel import _schema as t
from streamcoord.readmodel._projection import STAGE_TERMINAL, Consumed, apply_batch, micros
from streamcoord.readmodel.models import (
    AuditEntry,
    CommandOutcome,
    CommandStatus,
    DeadLetterEntry,
    Page,
    PipelineStats,
    RecentRun,
    RunDetail,
    RunQuery,
    RunSummary,
    StageAttempt,
    StageView,
    StatusChange,
)
from streamcoord.readmodel.store import CursorError

__all__ = ["Position", "SqlStore"]

#: A partition of a topic.
Position = tuple[str, int]

_FAILED: Final = frozenset({"failed", "timed_out"})
_URLS: Final = "use sqlite:///path.db or postgresql://user@host/db"
#: The advisory lock that serializes schema creation on PostgreSQL (an arbitrary constant).
_SCHEMA_LOCK: Final = 0x5C_12EAD_40DE1
# Within one instant (a decision step shares its event's time): the event decided, then the
# decisions, the status change, and last what the coordinator published about it.
_KIND_ORDER: Final = {"event": 0, "decision": 1, "status": 2}
_PUBLISHED: Final = 3
_COORDINATOR: Final = "streamcoord/coordinator"


class SqlStore:
    """A :class:`~streamcoord.readmodel.store.Store` in SQLite or PostgreSQL, and the
    projector's target (:meth:`apply`, :meth:`positions`, :meth:`reset`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> SqlStore:
        """The store at ``url`` (``sqlite:///file.db``, ``postgresql://...``)."""
        engine = _engine(url)
        if create:
            try:
                _create_schema(engine)
            except OperationalError as error:
                shown = engine.url.render_as_string(hide_password=True)
                engine.dispose()
                raise ConfigError(
                    f"cannot reach the read-model database {shown}: {error.orig}",
                    hint="check the URL and that the server runs",
                ) from None
        return cls(engine)

    # --- the projector's side -----------------------------------------------------------

    def positions(self) -> dict[Position, int]:
        """The next offset to read of every partition projected so far."""
        o = t.offsets.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(o.topic, o.partition, o.next_offset))
            return {(row.topic, row.partition): row.next_offset for row in rows}

    def apply(
        self, records: Sequence[Consumed], positions: Mapping[Position, int]
    ) -> frozenset[str]:
        """Project ``records`` and move to ``positions``, in one transaction; the ids of the
        runs whose rows or audit trail changed."""
        with self.engine.begin() as conn:
            changed = apply_batch(conn, records)
            _save_positions(conn, positions)
        return changed

    def reset(self) -> None:
        """Empty every table (``rebuild`` then replays the topics from the beginning)."""
        with self.engine.begin() as conn:
            for table in reversed(t.metadata.sorted_tables):
                conn.execute(delete(table))

    # --- queries ------------------------------------------------------------------------

    def list_runs(self, query: RunQuery) -> Page[RunSummary]:
        r = t.runs.c
        sort = r[query.sort]
        filters: list[ColumnElement[bool]] = []
        for column, value in (
            (r.pipeline, query.pipeline),
            (r.status, query.status),
            (r.run_key, query.run_key),
            (r.requested_by, query.requested_by),
        ):
            if value is not None:
                filters.append(column == value)
        if query.since is not None:
            filters.append(r.created_at >= micros(query.since))
        if query.until is not None:
            filters.append(r.created_at < micros(query.until))
        fingerprint = _fingerprint(query)
        if query.cursor is not None:
            value, run_id = _read_cursor(query.cursor, fingerprint, (int, str))
            after = tuple_(sort, r.run_id)
            filters.append(
                after < (value, run_id) if query.order == "desc" else after > (value, run_id)
            )
        order = (sort.desc(), r.run_id.desc()) if query.order == "desc" else (sort, r.run_id)
        stmt = select(*_SUMMARY).where(*filters).order_by(*order).limit(query.limit + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        items = [_summary(row) for row in rows[: query.limit]]
        cursor = None
        if len(rows) > query.limit:
            last = rows[query.limit - 1]
            cursor = _cursor([last._mapping[query.sort], last.run_id], fingerprint)
        return Page[RunSummary](items=items, next_cursor=cursor)

    def get_run(self, run_id: str) -> RunDetail | None:
        with self.engine.connect() as conn:
            run = conn.execute(select(t.runs).where(t.runs.c.run_id == run_id)).first()
            if run is None:
                return None
            sc, s, a = t.status_changes.c, t.stages.c, t.attempts.c
            changes = conn.execute(
                select(sc.status, sc.at, sc.caused_by).where(sc.run_id == run_id).order_by(sc.seq)
            ).all()
            stage_rows = conn.execute(
                select(t.stages).where(s.run_id == run_id).order_by(s.position)
            ).all()
            attempt_rows = conn.execute(
                select(t.attempts).where(a.run_id == run_id).order_by(a.stage, a.attempt)
            ).all()
        current = {row.stage: row for row in stage_rows}
        by_stage: dict[str, list[StageAttempt]] = {}
        for row in attempt_rows:
            by_stage.setdefault(row.stage, []).append(
                _attempt(row, current.get(row.stage), run.trace_id)
            )
        stages = [
            StageView(name=row.stage, status=row.status, attempts=by_stage.pop(row.stage, []))
            for row in stage_rows
        ]
        stages += [
            StageView(name=name, status=found[-1].status, attempts=found)
            for name, found in sorted(by_stage.items())
        ]
        return RunDetail(
            **_summary(run).model_dump(), partition=run.partition, params=run.params or {},
            trigger_type=run.trigger_type, trace_id=run.trace_id, caused_by=run.caused_by,
            status_changes=[StatusChange(status=c.status, at=_time(c.at), caused_by=c.caused_by)
                            for c in changes],
            stages=stages,
        )  # fmt: skip

    def audit_trail(self, run_id: str) -> list[AuditEntry]:
        e, d, sc, c = t.events.c, t.decisions.c, t.status_changes.c, t.causes.c
        caused = select(c.event_id).where(c.run_id == run_id)
        with self.engine.connect() as conn:
            events = conn.execute(
                select(t.events).where(or_(e.run_id == run_id, e.event_id.in_(caused)))
            ).all()
            decisions = conn.execute(select(t.decisions).where(d.run_id == run_id)).all()
            changes = conn.execute(select(t.status_changes).where(sc.run_id == run_id)).all()
        entries = [_event_entry(row) for row in events]
        entries += [_decision_entry(row) for row in decisions]
        entries += [_status_entry(row) for row in changes]
        entries.sort(key=_audit_order)
        return entries

    def dead_letters(self, *, limit: int = 50, cursor: str | None = None) -> Page[DeadLetterEntry]:
        dl = t.dead_letters.c
        key = tuple_(func.coalesce(dl.at, 0), dl.partition, dl.offset)
        stmt = select(t.dead_letters)
        if cursor is not None:
            at, partition, offset = _read_cursor(cursor, "deadletters", (int, int, int))
            stmt = stmt.where(key < (at, partition, offset))
        stmt = stmt.order_by(
            func.coalesce(dl.at, 0).desc(), dl.partition.desc(), dl.offset.desc()
        ).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        items = [_dead_letter(row) for row in rows[:limit]]
        after = None
        if len(rows) > limit:
            last = rows[limit - 1]
            after = _cursor([last.at or 0, last.partition, last.offset], "deadletters")
        return Page[DeadLetterEntry](items=items, next_cursor=after)

    def command_outcome(self, event_id: str) -> CommandOutcome:
        e, d, dc, dl, c = (
            t.events.c,
            t.decisions.c,
            t.decision_causes.c,
            t.dead_letters.c,
            t.causes.c,
        )
        with self.engine.connect() as conn:
            received = conn.execute(
                select(t.events).where(e.event_id == event_id).order_by(e.position).limit(1)
            ).first()
            letter = conn.execute(
                select(t.dead_letters)
                .where(dl.event_id == event_id)
                .order_by(dl.partition, dl.offset)
                .limit(1)
            ).first()
            decided = conn.execute(
                select(t.decisions).where(
                    d.position.in_(select(dc.position).where(dc.event_id == event_id))
                )
            ).all()
            runs = (
                conn.execute(select(c.run_id).where(c.event_id == event_id).order_by(c.run_id))
                .scalars()
                .all()
            )
        decisions = sorted((_decision_entry(row) for row in decided), key=_audit_order)
        run_ids = sorted({*runs, *(row.run_id for row in decided)})
        status: CommandStatus = "unseen"
        if letter is not None:
            status = "rejected"
        elif decisions or run_ids:
            status = "decided"
        elif received is not None:
            status = "received"
        return CommandOutcome(
            event_id=event_id, status=status,
            received=None if received is None else _event_entry(received),
            rejection=None if letter is None else _dead_letter(letter),
            decisions=decisions, runs=run_ids,
        )  # fmt: skip

    def pipeline_stats(self, *, since: datetime, recent: int = 20) -> list[PipelineStats]:
        r = t.runs.c
        counted = (
            select(r.pipeline, r.status, func.count())
            .where(r.created_at >= micros(since))
            .group_by(r.pipeline, r.status)
        )
        counts: dict[str, dict[str, int]] = {}
        stats = []
        with self.engine.connect() as conn:
            for pipeline, status, count in conn.execute(counted):
                counts.setdefault(pipeline, {})[status] = count
            for pipeline in sorted(counts):
                latest = conn.execute(
                    select(r.run_id, r.status, r.created_at, r.finished_at)
                    .where(r.pipeline == pipeline, r.finished_at.is_not(None))
                    .order_by(r.finished_at.desc()).limit(recent)).all()  # fmt: skip
                stats.append(PipelineStats(pipeline=pipeline, counts=counts[pipeline], recent=[
                    RecentRun(run_id=row.run_id, status=row.status,
                              finished_at=_time(row.finished_at),
                              duration_seconds=(row.finished_at - row.created_at) / 1e6)
                    for row in latest
                ]))  # fmt: skip
        return stats

    def close(self) -> None:
        self.engine.dispose()


_SUMMARY: Final = (
    t.runs.c.run_id, t.runs.c.pipeline, t.runs.c.run_key, t.runs.c.status,
    t.runs.c.requested_by, t.runs.c.spec_version, t.runs.c.created_at, t.runs.c.updated_at,
    t.runs.c.finished_at,
)  # fmt: skip


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"not a database URL: {url!r}", hint=_URLS) from None
    if parsed.drivername == "postgresql":  # psycopg 3, not SQLAlchemy's psycopg2 default
        parsed = parsed.set(drivername="postgresql+psycopg")
    shown = parsed.render_as_string(hide_password=True)
    if parsed.drivername not in {"sqlite", "sqlite+pysqlite", "postgresql+psycopg"}:
        raise ConfigError(f"unsupported read-model database {shown}", hint=_URLS)
    if parsed.drivername.startswith("sqlite") and parsed.database in {None, "", ":memory:"}:
        raise ConfigError(
            "an in-memory SQLite read model would be private to one connection",
            hint="use a file: sqlite:///path.db",
        )
    try:
        # orjson for the JSON columns: the standard library's encoder is most of a write
        engine = create_engine(parsed, json_serializer=_json_text, json_deserializer=orjson.loads)
    except (ArgumentError, ImportError) as error:
        raise ConfigError(
            f"cannot open the read-model database {shown}: {error}",
            hint="for PostgreSQL install streamcoord[postgres]",
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _create_schema(engine: Engine) -> None:
    """The tables and indexes, where missing."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # several API processes may start at once: one creates, the others wait for it
            conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
        t.metadata.create_all(conn)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL: readers (the API) never block the projector's writes, nor it them
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _save_positions(conn: Connection, positions: Mapping[Position, int]) -> None:
    if not positions:
        return
    o = t.offsets.c
    known = {(row.topic, row.partition) for row in conn.execute(select(o.topic, o.partition))}
    rows = [
        {"topic": topic, "partition": partition, "next_offset": offset}
        for (topic, partition), offset in sorted(positions.items())
    ]
    fresh = [row for row in rows if (row["topic"], row["partition"]) not in known]
    moved = [row for row in rows if (row["topic"], row["partition"]) in known]
    if fresh:
        conn.execute(t.offsets.insert(), fresh)
    if moved:
        conn.execute(
            update(t.offsets)
            .where(o.topic == bindparam("k_topic"), o.partition == bindparam("k_partition"))
            .values(next_offset=bindparam("next_offset")),
            [{"k_topic": r["topic"], "k_partition": r["partition"],
              "next_offset": r["next_offset"]} for r in moved],
        )  # fmt: skip


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _time(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, tz=UTC)


def _maybe_time(value: int | None) -> datetime | None:
    return None if value is None else _time(value)


def _summary(row: Any) -> RunSummary:
    return RunSummary(
        run_id=row.run_id, pipeline=row.pipeline, run_key=row.run_key, status=row.status,
        requested_by=row.requested_by, spec_version=row.spec_version,
        created_at=_time(row.created_at), updated_at=_time(row.updated_at),
        finished_at=_maybe_time(row.finished_at),
        duration_seconds=None if row.finished_at is None
        else (row.finished_at - row.created_at) / 1e6,
    )  # fmt: skip


def _attempt(row: Any, stage: Any, trace_id: str | None) -> StageAttempt:
    """An attempt's status and end: the coordinator's decision about it, else, for the stage's
    current attempt, what the latest run record shows (a success is recorded, not decided)."""
    status, ended_at = row.decided, row.ended_at
    if (
        status is None
        and stage is not None
        and stage.attempts == row.attempt
        and (stage.status in STAGE_TERMINAL)
    ):
        status, ended_at = stage.status, stage.ended_at
    if status is None:
        status = "running" if row.started_at is not None else "triggered"
    begun = row.started_at if row.started_at is not None else row.triggered_at
    error = row.error or (row.reason if row.decided in _FAILED else None)
    return StageAttempt(
        attempt=row.attempt, status=status, triggered_at=_maybe_time(row.triggered_at),
        started_at=_maybe_time(row.started_at), ended_at=_maybe_time(ended_at),
        duration_seconds=None if ended_at is None or begun is None
        else max(0.0, (ended_at - begun) / 1e6),
        outputs=row.outputs or {}, error=error or None, worker=row.worker,
        trace_id=trace_id or None,
        span_id=attempt_span_id(row.run_id, row.stage, row.attempt),
    )  # fmt: skip


def _event_entry(row: Any) -> AuditEntry:
    return AuditEntry(
        at=_time(row.at),
        kind="event",
        type=row.type,
        stage=row.stage,
        actor=row.actor,
        summary=row.summary,
        event_id=row.event_id,
        position=row.position,
        data=row.data,
    )


def _decision_entry(row: Any) -> AuditEntry:
    return AuditEntry(
        at=_time(row.at),
        kind="decision",
        type=row.action,
        stage=row.stage,
        actor="coordinator",
        summary=row.reason,
        causes=row.causes,
        position=row.position,
    )


def _status_entry(row: Any) -> AuditEntry:
    return AuditEntry(
        at=_time(row.at),
        kind="status",
        type=row.status,
        actor="coordinator",
        causes=[row.caused_by] if row.caused_by else [],
        position=row.position,
    )


def _audit_order(entry: AuditEntry) -> tuple[datetime, int, str, int, int]:
    topic, partition, offset = entry.position.rsplit(":", 2)
    rank = _KIND_ORDER[entry.kind]
    if entry.kind == "event" and entry.actor == _COORDINATOR:
        rank = _PUBLISHED
    return (entry.at, rank, topic, int(partition), int(offset))


def _dead_letter(row: Any) -> DeadLetterEntry:
    return DeadLetterEntry(
        partition=row.partition, offset=row.offset, at=_maybe_time(row.at), reason=row.reason,
        error=row.error, origin=row.origin, key=row.key, event_type=row.event_type,
        event_id=row.event_id, value_preview=row.preview,
    )  # fmt: skip


def _fingerprint(query: RunQuery) -> str:
    """What a cursor is valid for: the same filters and sort (not the page size)."""
    shape = query.model_dump(mode="json", exclude={"cursor", "limit"})
    return hashlib.sha256(orjson.dumps(shape, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _cursor(position: list[Any], fingerprint: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([fingerprint, *position])).decode().rstrip("=")


def _read_cursor(cursor: str, fingerprint: str, types: tuple[type, ...]) -> list[Any]:
    """The position a cursor of :func:`_cursor` holds, checked against the list it is for."""
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        decoded = None
    if not (
        isinstance(decoded, list)
        and len(decoded) == len(types) + 1
        and decoded[0] == fingerprint
        and all(type(v) is kind for v, kind in zip(decoded[1:], types, strict=True))
    ):
        raise CursorError(
            "the page cursor is not one this list handed out",
            hint="pass next_cursor of the previous page with the same filters",
        )
    return decoded[1:]
