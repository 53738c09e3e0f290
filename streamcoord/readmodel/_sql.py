"""The store on SQLAlchemy Core: one implementation for SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, create_engine

from streamcoord.errors import ConfigError
from streamcoord.readmodel._schema import metadata
from streamcoord.readmodel.models import (
    AuditEntry,
    DeadLetterEntry,
    Page,
    PipelineStats,
    RunDetail,
    RunQuery,
    RunSummary,
)

__all__ = ["SqlStore"]


class SqlStore:
    """A :class:`~streamcoord.readmodel.store.Store` in SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> SqlStore:
        if not url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ConfigError(f"unsupported read-model database {url!r}",
                              hint="use sqlite:///path.db or postgresql://user@host/db")
        engine = create_engine(url)
        if create:
            metadata.create_all(engine)
        return cls(engine)

    def list_runs(self, query: RunQuery) -> Page[RunSummary]:
        raise NotImplementedError

    def get_run(self, run_id: str) -> RunDetail | None:
        raise NotImplementedError

    def audit_trail(self, run_id: str) -> list[AuditEntry]:
        raise NotImplementedError

    def dead_letters(self, *, limit: int = 50, cursor: str | None = None) -> Page[DeadLetterEntry]:
        raise NotImplementedError

    def pipeline_stats(self, *, since: datetime, recent: int = 20) -> list[PipelineStats]:
        raise NotImplementedError

    def close(self) -> None:
        self.engine.dispose()
