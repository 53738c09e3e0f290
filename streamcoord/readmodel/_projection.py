"""Folding consumed records into rows, one batch at a time, inside one database transaction.

A batch first loads the rows its records touch (a few ``IN`` queries), folds every record into
them in memory in consumption order, then writes what changed with one ``executemany`` per
table. The fold gives each column a single source (see :mod:`._schema`), so the rows do not
depend on how the four topics' records interleave: a restart, which interleaves them
differently, yields the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, Final, Literal

from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from sqlalchemy import Connection, Table, and_, bindparam, func, select, update

from streamcoord.events.codec import EventDecodeError, decode
from streamcoord.events.models import (
    COORDINATOR_EVENT_TYPES,
    OWN_EVENT_TYPES,
    CloudEvent,
    DecisionRecord,
    RunRecord,
    RunRequested,
    StageFailed,
    StageHeartbeat,
    StageProgress,
    StageStarted,
    StageSucceeded,
)
from streamcoord.events.principal import PRINCIPAL_ATTRIBUTE
from streamcoord.readmodel import _schema as t

__all__ = [
    "RUN_TERMINAL",
    "STAGE_TERMINAL",
    "Consumed",
    "TopicKind",
    "apply_batch",
    "insert_many",
    "micros",
    "position_of",
]

TopicKind = Literal["runs", "decisions", "events", "deadletter"]

RUN_TERMINAL: Final = frozenset({"succeeded", "failed", "cancelled", "skipped"})
STAGE_TERMINAL: Final = frozenset(
    {"succeeded", "failed", "timed_out", "skipped", "cancelled", "upstream_failed"}
)
# decision actions that end the stage's current attempt, and the attempt status each means
_ATTEMPT_ENDS: Final = {
    "succeeded": "succeeded", "failed": "failed", "timed_out": "timed_out",
    "cancelled": "cancelled", "retry_wait": "failed",
}  # fmt: skip
# reports that say nothing an audit reader needs and come often, and the messages partitions of
# the coordinator route to each other (matches, pool and limit traffic: they have no model)
_NOT_AUDITED: Final = frozenset(
    {StageHeartbeat.TYPE, StageProgress.TYPE, *(COORDINATOR_EVENT_TYPES - OWN_EVENT_TYPES)}
)
_CHUNK: Final = 500
_DLQ: Final = "streamcoord.dlq."
_PREVIEW: Final = 512


@dataclass(frozen=True, slots=True)
class Consumed:
    """One consumed record: decoded (``event``) unless it is a dead letter or undecodable."""

    kind: TopicKind
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    event: CloudEvent | None = None
    key: bytes | None = None
    value: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


def micros(moment: datetime) -> int:
    """``moment`` as integer microseconds since the epoch (naive times are taken as UTC)."""
    seconds = moment.timestamp() if moment.tzinfo else moment.replace(tzinfo=UTC).timestamp()
    return round(seconds * 1_000_000)


def position_of(record: Consumed) -> str:
    return f"{record.topic}:{record.partition}:{record.offset}"


def apply_batch(conn: Connection, records: Sequence[Consumed]) -> frozenset[str]:
    """Fold ``records`` (in consumption order) into the rows, inside the caller's transaction;
    the ids of the runs whose rows or audit trail changed."""
    fold = _Fold(conn)
    fold.load(records)
    for record in records:
        fold.apply(record)
    fold.flush()
    return frozenset(fold.changed)


class _Rows:
    """Rows of one table keyed in memory: which were loaded, which are new, which changed."""

    def __init__(self, table: Table, keys: tuple[str, ...]) -> None:
        self.table, self.keys = table, keys
        self.rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.new: set[tuple[Any, ...]] = set()
        self.dirty: set[tuple[Any, ...]] = set()

    def load(self, rows: Iterable[Any]) -> None:
        for row in rows:
            mapping = dict(row._mapping)
            self.rows[tuple(mapping[k] for k in self.keys)] = mapping

    def get(self, key: tuple[Any, ...]) -> dict[str, Any] | None:
        return self.rows.get(key)

    def add(self, key: tuple[Any, ...], row: dict[str, Any]) -> dict[str, Any]:
        self.rows[key] = row
        self.new.add(key)
        return row

    def touch(self, key: tuple[Any, ...]) -> None:
        if key not in self.new:
            self.dirty.add(key)

    def write(self, conn: Connection) -> None:
        if self.new:
            insert_many(conn, self.table, [self.rows[k] for k in self.new])
        if self.dirty:
            match = and_(*(self.table.c[k] == bindparam(f"k_{k}") for k in self.keys))
            names = [c.name for c in self.table.columns if c.name not in self.keys]
            values: dict[str, Any] = {name: bindparam(name) for name in names}
            rows = [
                {**{f"k_{k}": v for k, v in zip(self.keys, key, strict=True)},
                 **{c: self.rows[key][c] for c in values}}
                for key in self.dirty
            ]  # fmt: skip
            conn.execute(update(self.table).where(match).values(values), rows)


class _Fold:
    """The working set of one batch."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.runs = _Rows(t.runs, ("run_id",))
        self.stages = _Rows(t.stages, ("run_id", "stage"))
        self.attempts = _Rows(t.attempts, ("run_id", "stage", "attempt"))
        self.seq: dict[str, int] = {}  # run id -> its last status change's seq
        self.current: dict[tuple[str, str], int] = {}  # (run, stage) -> last triggered attempt
        self.new_causes: list[dict[str, Any]] = []
        self.inserts: dict[Table, list[dict[str, Any]]] = {
            t.status_changes: [],
            t.events: [],
            t.decisions: [],
            t.decision_causes: [],
            t.dead_letters: [],
        }
        self.cause_events: list[dict[str, Any]] = []  # events that may have created a run
        self.first_cause_set: set[str] = set()  # runs whose first cause this batch learnt
        self.changed: set[str] = set()

    # --- loading --------------------------------------------------------------------------

    def load(self, records: Sequence[Consumed]) -> None:
        recorded: set[str] = set()
        touched: set[str] = set()
        for record in records:
            event = record.event
            if isinstance(event, RunRecord):
                recorded.add(event.data.run_id)
            elif isinstance(event, DecisionRecord):
                touched.add(event.data.run_id)
            elif event is not None and (run_id := _run_id(event)) is not None:
                touched.add(run_id)
        for chunk in _chunks(recorded):
            self.runs.load(self.conn.execute(select(t.runs).where(t.runs.c.run_id.in_(chunk))))
            self.stages.load(
                self.conn.execute(select(t.stages).where(t.stages.c.run_id.in_(chunk)))
            )
            sc = t.status_changes.c
            for run_id, seq in self.conn.execute(
                    select(sc.run_id, func.max(sc.seq)).where(sc.run_id.in_(chunk))
                    .group_by(sc.run_id)):  # fmt: skip
                self.seq[run_id] = seq
        for chunk in _chunks(touched | recorded):
            self.attempts.load(
                self.conn.execute(select(t.attempts).where(t.attempts.c.run_id.in_(chunk)))
            )
        for (run_id, stage, attempt), row in self.attempts.rows.items():
            if row["triggered_at"] is not None:
                key = (run_id, stage)
                self.current[key] = max(self.current.get(key, 0), attempt)

    # --- folding --------------------------------------------------------------------------

    def apply(self, record: Consumed) -> None:
        event = record.event
        if record.kind == "deadletter":
            self._dead_letter(record)
        elif isinstance(event, RunRecord):
            self._run_record(record, event)
        elif isinstance(event, DecisionRecord):
            self._decision(record, event)
        elif record.kind == "events" and event is not None:
            self._event(record, event)
        # anything else (a record that did not decode) only advances the position

    def _run_record(self, record: Consumed, event: RunRecord) -> None:
        data, at = event.data, _time(record, event)
        self.changed.add(data.run_id)
        run = self.runs.get((data.run_id,))
        if run is None:
            run = self.runs.add((data.run_id,), {
                "run_id": data.run_id, "status": "", "partition": record.partition,
                "first_cause": None,
                "requested_by": None, "trigger_type": None, "params": {}, "created_at": at,
                "finished_at": None,
            })  # fmt: skip
        else:
            self.runs.touch((data.run_id,))
        if run["first_cause"] is None and data.caused_by:
            run["first_cause"] = data.caused_by[0]
            self.first_cause_set.add(data.run_id)
        known = set(run.get("caused_by") or ())
        for event_id in data.caused_by:  # a run's causes only grow: the new ones are stored
            if event_id not in known:
                known.add(event_id)
                self.new_causes.append({"run_id": data.run_id, "event_id": event_id})
        run.update(
            pipeline=data.pipeline,
            run_key=data.run_key,
            spec_version=data.spec_version,
            trace_id=data.trace_id,
            caused_by=list(data.caused_by),
            updated_at=at,
        )
        if data.status != run["status"]:
            self._status_change(record, event, run, at)
        for index, (name, status) in enumerate(data.stages.items()):
            self._stage(data.run_id, name, index, (status, data.attempts.get(name, 0)), at)

    def _status_change(
        self, record: Consumed, event: RunRecord, run: dict[str, Any], at: int
    ) -> None:
        data = event.data
        seq = self.seq[data.run_id] = self.seq.get(data.run_id, 0) + 1
        # a record's id is "<run id>|<status>|<source>|<event id>" (core.record_of)
        cause = event.id.removeprefix(f"{data.run_id}|{data.status}|")
        self.inserts[t.status_changes].append({
            "run_id": data.run_id, "seq": seq, "status": data.status, "at": at,
            "caused_by": cause.split("|", 1)[-1] if cause != event.id else None,
            "position": position_of(record),
        })  # fmt: skip
        run["status"] = data.status
        run["finished_at"] = at if data.status in RUN_TERMINAL else None

    def _stage(self, run_id: str, name: str, index: int, state: tuple[str, int], at: int) -> None:
        status, attempts = state
        key = (run_id, name)
        row = self.stages.get(key)
        if row is None:
            row = self.stages.add(
                key,
                {
                    "run_id": run_id,
                    "stage": name,
                    "position": index,
                    "status": "",
                    "attempts": attempts,
                    "ended_at": None,
                },
            )
        elif (row["status"], row["attempts"], row["position"]) == (status, attempts, index):
            return
        else:
            self.stages.touch(key)
        ended = status in STAGE_TERMINAL
        if not ended:
            row["ended_at"] = None
        elif row["ended_at"] is None or row["attempts"] != attempts:
            row["ended_at"] = at
        row.update(status=status, attempts=attempts, position=index)

    def _decision(self, record: Consumed, event: DecisionRecord) -> None:
        data, at = event.data, _time(record, event)
        self.changed.add(data.run_id)
        self.inserts[t.decisions].append({
            "position": position_of(record), "run_id": data.run_id, "stage": data.stage,
            "action": data.action, "reason": data.reason, "causes": list(data.caused_by),
            "at": at,
        })  # fmt: skip
        position = position_of(record)
        self.inserts[t.decision_causes].extend(
            {"event_id": cause, "position": position} for cause in dict.fromkeys(data.caused_by)
        )
        if data.stage is None:
            return
        if data.action == "triggered":
            number = _attempt_number(data.reason)
            if number is not None:
                row = self._attempt(data.run_id, data.stage, number)
                if row["triggered_at"] is None:
                    row["triggered_at"] = at
                key = (data.run_id, data.stage)
                self.current[key] = max(self.current.get(key, 0), number)
            return
        ended = _ATTEMPT_ENDS.get(data.action)
        number = self.current.get((data.run_id, data.stage))
        if ended is not None and number is not None:
            row = self._attempt(data.run_id, data.stage, number)
            if row["decided"] is None:
                row.update(decided=ended, ended_at=at, reason=data.reason)

    def _event(self, record: Consumed, event: CloudEvent) -> None:
        if event.type in _NOT_AUDITED:
            return
        at, actor, data = _time(record, event), _actor(event), _json_data(event.data)
        fields = data if isinstance(data, dict) else {}
        run_id, stage = _text(fields.get("run_id")), _text(fields.get("stage"))
        self.inserts[t.events].append({
            "position": position_of(record), "event_id": event.id, "run_id": run_id,
            "type": event.type, "stage": stage, "actor": actor, "at": at,
            "summary": _summary(event, fields), "data": data,
        })  # fmt: skip
        if run_id is None:
            params = (
                data.get("params", {})
                if isinstance(data, dict) and isinstance(event, RunRequested)
                else {}
            )
            self.cause_events.append(
                {
                    "eid": event.id,
                    "requested_by": actor,
                    "trigger_type": event.type,
                    "params": params,
                }
            )
            return
        self.changed.add(run_id)
        if isinstance(event, StageStarted | StageSucceeded | StageFailed):
            self._report(event, at)

    def _report(self, event: StageStarted | StageSucceeded | StageFailed, at: int) -> None:
        ref = event.data
        row = self._attempt(ref.run_id, ref.stage, ref.attempt)
        if row["worker"] is None:
            row["worker"] = event.source
        if isinstance(event, StageStarted):
            if row["started_at"] is None or at < row["started_at"]:
                row["started_at"] = at
        elif row["reported"] is None:
            row["reported"] = "succeeded" if isinstance(event, StageSucceeded) else "failed"
            if isinstance(event, StageSucceeded):
                row["outputs"] = event.data.outputs  # JSON values, as validated
            else:
                row["error"] = event.data.error

    def _attempt(self, run_id: str, stage: str, number: int) -> dict[str, Any]:
        key = (run_id, stage, number)
        row = self.attempts.get(key)
        if row is None:
            return self.attempts.add(key, {
                "run_id": run_id, "stage": stage, "attempt": number, "triggered_at": None,
                "decided": None, "ended_at": None, "reason": None, "started_at": None,
                "worker": None, "outputs": None, "error": None, "reported": None,
            })  # fmt: skip
        self.attempts.touch(key)
        return row

    def _dead_letter(self, record: Consumed) -> None:
        headers = {name: value for name, value in record.headers}

        def header(name: str) -> str | None:
            value = headers.get(_DLQ + name)
            return value.decode(errors="replace") if value is not None else None

        origin = None
        if (topic := header("topic")) is not None:
            origin = f"{topic}:{header('partition')}:{header('offset')}"
        refused = _refused_event(record)
        event_type = headers.get("ce_type")
        self.inserts[t.dead_letters].append({
            "partition": record.partition, "offset": record.offset,
            "at": record.timestamp_ms * 1000, "reason": header("reason") or "unknown",
            "error": header("error") or "", "origin": origin,
            "key": record.key.decode(errors="replace") if record.key is not None else None,
            "event_type": (refused.type if refused is not None
                           else event_type.decode(errors="replace") if event_type else None),
            "event_id": refused.id if refused is not None else None,
            "preview": (record.value or b"")[:_PREVIEW].decode(errors="replace"),
        })  # fmt: skip

    # --- writing --------------------------------------------------------------------------

    def flush(self) -> None:
        conn = self.conn
        for table, rows in self.inserts.items():
            if rows:
                insert_many(conn, table, rows)
        if self.new_causes:
            insert_many(conn, t.causes, self.new_causes)
        self._requests_of_new_runs()
        self.runs.write(conn)
        if self.cause_events:
            r = t.runs.c
            conn.execute(
                update(t.runs).where(r.first_cause == bindparam("eid"))
                .values(requested_by=bindparam("requested_by"),
                        trigger_type=bindparam("trigger_type"), params=bindparam("params")),
                self.cause_events,
            )  # fmt: skip
        self.stages.write(conn)
        self.attempts.write(conn)

    def _requests_of_new_runs(self) -> None:
        """Who asked for each run whose first cause this batch learnt, if that event is stored
        (else the event's own batch fills it in, by ``cause_events``)."""
        wanted: dict[str, list[dict[str, Any]]] = {}
        for run_id in self.first_cause_set:
            run = self.runs.rows[(run_id,)]
            wanted.setdefault(run["first_cause"], []).append(run)
        e = t.events.c
        for chunk in _chunks(wanted):
            found = self.conn.execute(
                select(e.event_id, e.type, e.actor, e.data)
                .where(e.event_id.in_(chunk), e.run_id.is_(None))
                .order_by(e.position)
            )
            for row in found:
                for run in wanted.pop(row.event_id, ()):
                    params = row.data.get("params", {}) if row.type == RunRequested.TYPE else {}
                    run.update(requested_by=row.actor, trigger_type=row.type, params=params)


def insert_many(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` in one executemany of the driver, with the statement SQLAlchemy compiles
    for the connection's dialect (in its parameter style) and the columns' own bind
    processors (JSON): the same SQL as ``conn.execute(table.insert(), rows)`` without
    SQLAlchemy's per-row parameter processing, which cost more than the database's work."""
    sql, names, processors = _compiled_insert(conn.dialect, table)
    params: list[Any]
    if conn.dialect.positional:
        values = itemgetter(*names)  # every table has several columns: it gives tuples
        at = [(names.index(name), process) for name, process in processors.items()]
        params = [values(row) for row in rows]
        if at:
            changed = [list(row) for row in params]
            for row in changed:
                for index, process in at:
                    row[index] = process(row[index])
            params = [tuple(row) for row in changed]  # SQLAlchemy passes on tuples or dicts
    else:
        params = [{**row, **{name: process(row[name]) for name, process in processors.items()}}
                  for row in rows]  # fmt: skip
    conn.exec_driver_sql(sql, params)


_INSERTS: dict[tuple[str, str], tuple[str, list[str], dict[str, Any]]] = {}


def _compiled_insert(dialect: Any, table: Table) -> tuple[str, list[str], dict[str, Any]]:
    key = (dialect.name, table.name)
    found = _INSERTS.get(key)
    if found is None:
        compiled = table.insert().compile(dialect=dialect)
        names = (
            list(compiled.positiontup or [])
            if dialect.positional
            else [column.name for column in table.columns]
        )
        processors = {
            column.name: processor for column in table.columns
            if (processor := column.type.bind_processor(dialect)) is not None
        }  # fmt: skip
        found = _INSERTS[key] = (str(compiled), names, processors)
    return found


def _refused_event(record: Consumed) -> CloudEvent | None:
    """The event a dead letter holds, when it is one (a command the coordinator refused)."""
    original = [(name, value) for name, value in record.headers if not name.startswith(_DLQ)]
    try:
        return decode(record.value, original)
    except EventDecodeError:
        return None


def _chunks(items: Iterable[str]) -> Iterator[list[str]]:
    batch = sorted(items)
    for start in range(0, len(batch), _CHUNK):
        yield batch[start : start + _CHUNK]


def _json_data(data: Any) -> Any:
    """An event's data in JSON form (a model dumped; bytes as base64 text)."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    return to_jsonable_python(data, bytes_mode="base64")


def _time(record: Consumed, event: CloudEvent) -> int:
    return micros(event.time) if event.time is not None else record.timestamp_ms * 1000


def _field(data: Any, name: str) -> Any:
    """A field of an event's data, a model or a dict; None when it has none (without the cost
    of a missed attribute on a pydantic model)."""
    if isinstance(data, dict):
        return data.get(name)
    fields = getattr(data, "__dict__", None)
    return fields.get(name) if fields is not None else None


def _run_id(event: CloudEvent) -> str | None:
    run_id = _field(event.data, "run_id")
    return run_id if isinstance(run_id, str) and run_id else None


def _actor(event: CloudEvent) -> str:
    """The principal an event carries (extension attribute), else its source."""
    extra = event.__pydantic_extra__ or {}
    principal = extra.get(PRINCIPAL_ATTRIBUTE)
    return principal if isinstance(principal, str) and principal else event.source


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _summary(event: CloudEvent, fields: dict[str, Any]) -> str:
    for name in ("error", "reason", "outcome"):
        value = fields.get(name)
        if isinstance(value, str) and value:
            return value
    if isinstance(event, RunRequested):
        return f"run of {event.data.pipeline} for key {event.data.run_key}"
    return ""


def _attempt_number(reason: str) -> int | None:
    """The attempt a ``triggered`` decision names (its reason reads ``attempt <n>``)."""
    head, _, number = reason.partition(" ")
    return int(number) if head == "attempt" and number.isdigit() else None
