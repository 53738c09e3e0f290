"""The read model's tables and indexes (SQLAlchemy Core; the same schema on SQLite and PostgreSQL).

Times are integer microseconds since the epoch (UTC): they compare, sort and index the same way
on both databases, and cost less than text dates in SQLite. Rows are keyed by what identifies
them in Kafka (run id, stage, attempt, topic position), never by counters, so a rebuild that
replays the same records produces the same rows.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "attempts",
    "causes",
    "dead_letters",
    "decision_causes",
    "decisions",
    "events",
    "metadata",
    "offsets",
    "runs",
    "stages",
    "status_changes",
]

metadata = MetaData()

runs = Table(
    "sc_runs", metadata,
    Column("run_id", String(512), primary_key=True),
    Column("pipeline", String(255), nullable=False),
    Column("run_key", String(512), nullable=False),
    Column("status", String(32), nullable=False),
    Column("partition", Integer),
    Column("spec_version", String(64)),
    Column("trace_id", String(32)),
    Column("caused_by", JSON, nullable=False),
    Column("first_cause", String(512)),
    Column("requested_by", String(512)),
    Column("trigger_type", String(255)),
    Column("params", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger),
    # the list filters: each leads with its equality column and ends with the keyset columns
    Index("sc_runs_created", "created_at", "run_id"),
    Index("sc_runs_updated", "updated_at", "run_id"),
    Index("sc_runs_pipeline_created", "pipeline", "created_at", "run_id"),
    Index("sc_runs_pipeline_updated", "pipeline", "updated_at", "run_id"),
    Index("sc_runs_status_created", "status", "created_at", "run_id"),
    Index("sc_runs_pipeline_status_created", "pipeline", "status", "created_at", "run_id"),
    Index("sc_runs_key_created", "run_key", "created_at", "run_id"),
    Index("sc_runs_requested_created", "requested_by", "created_at", "run_id"),
    Index("sc_runs_pipeline_finished", "pipeline", "finished_at"),
    Index("sc_runs_first_cause", "first_cause"),
)  # fmt: skip

status_changes = Table(
    "sc_status_changes", metadata,
    Column("run_id", String(512), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("status", String(32), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("caused_by", String(512)),
    Column("position", String(300), nullable=False),
)  # fmt: skip

stages = Table(
    "sc_stages", metadata,
    Column("run_id", String(512), primary_key=True),
    Column("stage", String(255), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Column("attempts", Integer, nullable=False),
    # when a run record first showed the current attempt ended (a success is no decision)
    Column("ended_at", BigInteger),
)  # fmt: skip

#: Each column has one source, so the order in which topics are read does not matter: the
#: coordinator's decisions (triggered_at, decided, ended_at, reason) and the worker's reports
#: (started_at, worker, outputs, error).
attempts = Table(
    "sc_attempts", metadata,
    Column("run_id", String(512), primary_key=True),
    Column("stage", String(255), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("triggered_at", BigInteger),
    Column("decided", String(32)),
    Column("ended_at", BigInteger),
    Column("reason", Text),
    Column("started_at", BigInteger),
    Column("worker", String(512)),
    Column("outputs", JSON),
    Column("error", Text),
    Column("reported", String(32)),
)  # fmt: skip

#: Event ids that caused a run (its record's ``caused_by``): the events of its audit trail that
#: do not name the run themselves (a run request, the external events that matched a trigger).
causes = Table(
    "sc_causes", metadata,
    Column("run_id", String(512), primary_key=True),
    Column("event_id", String(512), primary_key=True),
)  # fmt: skip

events = Table(
    "sc_events", metadata,
    Column("position", String(300), primary_key=True),
    Column("event_id", String(512), nullable=False),
    Column("run_id", String(512)),
    Column("type", String(255), nullable=False),
    Column("stage", String(255)),
    Column("actor", String(512), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("summary", Text, nullable=False),
    Column("data", JSON),
    Index("sc_events_event_id", "event_id"),
    Index("sc_events_run", "run_id"),
)  # fmt: skip

decisions = Table(
    "sc_decisions", metadata,
    Column("position", String(300), primary_key=True),
    Column("run_id", String(512), nullable=False),
    Column("stage", String(255)),
    Column("action", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("causes", JSON, nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("sc_decisions_run", "run_id"),
)  # fmt: skip

#: The events each decision names as its causes: what became of a command (its id).
decision_causes = Table(
    "sc_decision_causes", metadata,
    Column("event_id", String(512), primary_key=True),
    Column("position", String(300), primary_key=True),
)  # fmt: skip

dead_letters = Table(
    "sc_dead_letters", metadata,
    Column("partition", Integer, primary_key=True),
    Column("offset", BigInteger, primary_key=True),
    Column("at", BigInteger),
    Column("reason", String(64), nullable=False),
    Column("error", Text, nullable=False),
    Column("origin", String(300)),
    Column("key", Text),
    Column("event_type", String(255)),
    Column("event_id", String(512)),
    Column("preview", Text, nullable=False),
    Index("sc_dead_letters_latest", "at", "partition", "offset"),
    Index("sc_dead_letters_event", "event_id"),
)  # fmt: skip

#: The next offset to read of every partition projected: written with the rows it produced.
offsets = Table(
    "sc_offsets", metadata,
    Column("topic", String(300), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)  # fmt: skip
