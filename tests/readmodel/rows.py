"""Every row of a store, for comparing two projections of the same records."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from streamcoord.readmodel import _schema
from streamcoord.readmodel._sql import SqlStore


def all_rows(store: SqlStore, *, offsets: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """Each table's rows sorted by their primary key (the offsets table only if asked)."""
    dump: dict[str, list[tuple[Any, ...]]] = {}
    with store.engine.connect() as conn:
        for table in _schema.metadata.sorted_tables:
            if table is _schema.offsets and not offsets:
                continue
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            dump[table.name] = [tuple(row) for row in rows]
    return dump
