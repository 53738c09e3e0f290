"""Stores for the read model's tests: the same tests run on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streamcoord.readmodel import open_store
from streamcoord.readmodel._sql import SqlStore
from tests.postgres_fixtures import PostgresCluster, provide_postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    yield from provide_postgres()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty store of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'readmodel.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.database()


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()
