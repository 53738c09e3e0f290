"""The API's tests run on both stores: SQLite, and PostgreSQL where the machine has it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.api.stack import SPEC, Stack, api_stack
from tests.kafka_fixtures import unique_name
from tests.postgres_fixtures import PostgresCluster, provide_postgres


@pytest.fixture(scope="session")
def api_postgres() -> Iterator[PostgresCluster]:
    yield from provide_postgres()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('store') / 'readmodel.db'}"
    cluster: PostgresCluster = request.getfixturevalue("api_postgres")
    return cluster.database()


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, module_store_url: str, tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Stack]:  # fmt: skip
    spec_dir = tmp_path_factory.mktemp("specs")
    (spec_dir / "test.yaml").write_text(SPEC)
    prefix = unique_name("api", Path(str(request.node.name)).stem) + "."
    async with api_stack(kafka_bootstrap, module_store_url, prefix, str(spec_dir)) as running:
        yield running
