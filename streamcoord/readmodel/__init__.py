"""The read model: a projection of every run into SQLite or PostgreSQL, and its queries.

``open_store(url)`` gives a :class:`Store` (``sqlite:///file.db`` by default,
``postgresql://...`` for stores shared by several API processes); ``project(store, ...)`` keeps
it up to date from Kafka. The API reads the store; only the projector writes it.
"""

from streamcoord.readmodel._sql import SqlStore
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
    RunSort,
    RunSummary,
    SortOrder,
    StageAttempt,
    StageView,
    StatusChange,
)
from streamcoord.readmodel.projector import project
from streamcoord.readmodel.store import DEFAULT_DATABASE, CursorError, Store, open_store

__all__ = [
    "DEFAULT_DATABASE",
    "AuditEntry",
    "CommandOutcome",
    "CommandStatus",
    "CursorError",
    "DeadLetterEntry",
    "Page",
    "PipelineStats",
    "RecentRun",
    "RunDetail",
    "RunQuery",
    "RunSort",
    "RunSummary",
    "SortOrder",
    "SqlStore",
    "StageAttempt",
    "StageView",
    "StatusChange",
    "Store",
    "open_store",
    "project",
]
