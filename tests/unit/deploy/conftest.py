"""A helm binary for the chart's tests, built from the Go module proxy on first use and cached
(``streamcoord.devtools.helm``, as the Jaeger and toxiproxy tests build theirs). Without Go and
without a cached binary, the tests that need helm are skipped with the reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from streamcoord.devtools.helm import build_helm, helm_cached

#: Seconds a test may take when helm must first be built (cold: about 5 minutes on 2 cores).
HELM_BUILD_TIMEOUT = 1800


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if helm_cached():
        return
    for item in items:
        if "helm" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(HELM_BUILD_TIMEOUT))


@pytest.fixture(scope="session")
def helm() -> Path:
    """The path of a helm binary."""
    if not helm_cached() and shutil.which("go") is None:
        pytest.skip("helm is built once with Go from the Go module proxy: `go` is not on PATH")
    return build_helm()
