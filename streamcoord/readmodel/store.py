"""The read model's query interface, and the factory of its stores.

Synchronous by design: the stores are SQLAlchemy Core over sync drivers (the standard library's
sqlite3, psycopg 3), which keeps one code path for both databases and no async driver to pin.
Code on an event loop calls them in a worker thread: ``await asyncio.to_thread(store.get_run,
run_id)``, or FastAPI/Starlette ``def`` endpoints, which run in the threadpool. Every method is
safe to call from several threads at once (each takes its own connection from the pool).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from streamcoord.errors import ConfigError
from streamcoord.readmodel.models import (
    AuditEntry,
    CommandOutcome,
    DeadLetterEntry,
    Page,
    PipelineStats,
    RunDetail,
    RunQuery,
    RunSummary,
)

if TYPE_CHECKING:
    from streamcoord.readmodel._sql import SqlStore

__all__ = ["DEFAULT_DATABASE", "CursorError", "Store", "open_store"]

#: Where ``open_store`` puts the SQLite file when no URL is given.
DEFAULT_DATABASE = "sqlite:///streamcoord-readmodel.db"


class CursorError(ConfigError):
    """A page cursor that this store did not hand out (or for other filters or sort)."""


@runtime_checkable
class Store(Protocol):
    """What the API and the UI read; the projector is the only writer."""

    def list_runs(self, query: RunQuery) -> Page[RunSummary]:
        """Runs matching ``query``, sorted, one page; raises CursorError for a foreign cursor."""
        ...

    def get_run(self, run_id: str) -> RunDetail | None:
        """One run with its status changes, stages and attempts; None when unknown."""
        ...

    def audit_trail(self, run_id: str) -> list[AuditEntry]:
        """Every event, decision and status change that touched the run, in order."""
        ...

    def dead_letters(self, *, limit: int = 50, cursor: str | None = None) -> Page[DeadLetterEntry]:
        """Refused records, latest first, with the reason the coordinator gave."""
        ...

    def command_outcome(self, event_id: str) -> CommandOutcome:
        """What became of the event ``event_id`` (a command): received, applied or rejected."""
        ...

    def pipeline_stats(self, *, since: datetime, recent: int = 20) -> list[PipelineStats]:
        """Per pipeline: runs created since ``since`` counted by status, and the ``recent``
        latest finished runs' durations; pipelines sorted by name."""
        ...

    def close(self) -> None:
        """Release the database connections."""
        ...


def open_store(url: str = DEFAULT_DATABASE, *, create: bool = True) -> SqlStore:
    """The store at ``url``: ``sqlite:///path.db`` (the default) or ``postgresql://...``.

    ``create`` makes the schema (tables and indexes) when it is missing. The returned
    :class:`SqlStore` is a :class:`Store` and also what the projector writes to. Raises
    ConfigError for a URL of another database.
    """
    # imported here: the SQL module needs the Store protocol and CursorError defined above
    from streamcoord.readmodel._sql import SqlStore  # noqa: PLC0415

    return SqlStore.open(url, create=create)
