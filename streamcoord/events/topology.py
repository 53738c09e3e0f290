"""Every topic streamcoord uses: its name, its role, how it is partitioned and who writes it.

The one place topic names are spelled: the coordinator's settings, the core's commands, the
emitter, the worker SDK, the executor bindings, the ACL builder and the CLI ask this module.
``topics.yaml`` (packaged) declares their sizes and broker configs; a test keeps the two in
agreement. Pure: constants and lookups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "AIRFLOW_TRIGGERS",
    "DBT_TRIGGERS",
    "DEADLETTER",
    "DECISIONS",
    "EVENTS",
    "INTERNAL",
    "RUNS",
    "SPECS",
    "STATE",
    "STREAMING_TRIGGERS",
    "TOPOLOGY",
    "TRIGGERS",
    "Principal",
    "Role",
    "Topic",
    "partitioning_problems",
    "read_by",
    "topic",
    "written_by",
]

Role = Literal[
    "public_input",
    "internal",
    "changelog",
    "executor",
    "records",
    "decisions",
    "specs",
    "dead_letters",
]
#: Who touches topics, as the ACL docs name them: ``emitter`` (emit SDK, HTTP ingest, CLI
#: commands), ``worker`` (serves executor topics), ``coordinator``, ``reader``
#: (``status``/``runs``), ``operator`` (``specs publish``, dead-letter inspection).
Principal = Literal["emitter", "worker", "coordinator", "reader", "operator"]


@dataclass(frozen=True, slots=True)
class Topic:
    """One topic as declared in ``topics.yaml`` (before any deployment prefix)."""

    name: str
    role: Role
    writers: frozenset[Principal]
    readers: frozenset[Principal]
    #: The topic whose partition count this one must have (partition N goes with its N).
    partitions_as: str | None = None


def _topic(
    name: str,
    role: Role,
    writers: set[Principal],
    readers: set[Principal],
    partitions_as: str | None = None,
) -> Topic:
    return Topic(name, role, frozenset(writers), frozenset(readers), partitions_as)


EVENTS: Final = "streamcoord.events"
INTERNAL: Final = "streamcoord.internal"
STATE: Final = "streamcoord.state"
TRIGGERS: Final = "streamcoord.triggers"
STREAMING_TRIGGERS: Final = "streamcoord.triggers.streaming"
DBT_TRIGGERS: Final = "streamcoord.triggers.dbt"
AIRFLOW_TRIGGERS: Final = "streamcoord.triggers.airflow"
RUNS: Final = "streamcoord.runs"
DECISIONS: Final = "streamcoord.decisions"
SPECS: Final = "streamcoord.specs"
DEADLETTER: Final = "streamcoord.deadletter"

#: Every topic, in the order of ``topics.yaml``.
TOPOLOGY: Final[tuple[Topic, ...]] = (
    # The public input: any system's CloudEvents, workers' reports, commands.
    _topic(EVENTS, "public_input", {"emitter", "worker"}, {"coordinator"}),
    # What coordinators decide, in order: admitted events and the messages partitions route
    # each other (streamcoord.events.internal); decided with the events partition of its number.
    _topic(INTERNAL, "internal", {"coordinator"}, {"coordinator"}, partitions_as=EVENTS),
    # The core's state, compacted; partition N belongs to events partition N.
    _topic(STATE, "changelog", {"coordinator"}, {"coordinator"}, partitions_as=EVENTS),
    _topic(TRIGGERS, "executor", {"coordinator"}, {"worker"}),
    _topic(STREAMING_TRIGGERS, "executor", {"coordinator"}, {"worker"}),
    _topic(DBT_TRIGGERS, "executor", {"coordinator"}, {"worker"}),
    _topic(AIRFLOW_TRIGGERS, "executor", {"coordinator"}, {"worker"}),
    _topic(RUNS, "records", {"coordinator"}, {"reader"}),
    _topic(DECISIONS, "decisions", {"coordinator"}, {"reader"}),
    # Spec versions, one partition: the order of versions is the order of this log.
    _topic(SPECS, "specs", {"operator"}, {"coordinator"}),
    _topic(DEADLETTER, "dead_letters", {"coordinator"}, {"operator"}),
)

_BY_NAME: Final[Mapping[str, Topic]] = {t.name: t for t in TOPOLOGY}


def topic(name: str) -> Topic:
    """The topic declared as ``name`` (no prefix); KeyError for a name streamcoord does not use."""
    return _BY_NAME[name]


def written_by(principal: Principal) -> tuple[str, ...]:
    """Names of the topics ``principal`` writes, in topology order."""
    return tuple(t.name for t in TOPOLOGY if principal in t.writers)


def read_by(principal: Principal) -> tuple[str, ...]:
    """Names of the topics ``principal`` reads, in topology order."""
    return tuple(t.name for t in TOPOLOGY if principal in t.readers)


def partitioning_problems(partitions: Mapping[str, int]) -> list[str]:
    """What breaks the partitioning rules, given each topic's partition count (missing ones
    are not checked)."""
    problems = []
    for t in TOPOLOGY:
        own, other = partitions.get(t.name), partitions.get(t.partitions_as or "")
        if own is not None and other is not None and own != other:
            problems.append(
                f"{t.name} has {own} partitions but must have as many as {t.partitions_as}"
                f" ({other})"
            )
    return problems
