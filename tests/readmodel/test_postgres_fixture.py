"""Without PostgreSQL on the machine the PostgreSQL cases skip, and say why."""

from __future__ import annotations

import pytest

from tests import postgres_fixtures


def test_no_binaries_is_a_skip_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_fixtures, "postgres_binaries", lambda: None)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL is not installed"):
        next(postgres_fixtures.provide_postgres())
