"""The coordinator's retention setting is what the core decides expiry with."""

from __future__ import annotations

from datetime import timedelta

import pytest

from streamcoord.core import Catalog
from streamcoord.runtime import Coordinator, CoordinatorSettings


def test_the_settings_retention_becomes_the_catalogs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert CoordinatorSettings().retention_s == timedelta(days=7).total_seconds()
    monkeypatch.setenv("STREAMCOORD_RETENTION_S", "90")
    coordinator = Coordinator(Catalog.build([]), CoordinatorSettings(), {})
    assert coordinator.catalog.retention == timedelta(seconds=90)
