"""A real Airflow 3 for the Airflow executor's tests, as a pytest plugin (``pytest_plugins`` in
``tests/conftest.py``).

Opt-in: installing Airflow into its own venv takes about a minute the first time and starting
``airflow standalone`` about another (two cores, shared), and the broker tests run twice in
``make test``; so the tests run only with ``STREAMCOORD_TEST_AIRFLOW=1`` (``make test-airflow``)
and are skipped, saying so, otherwise, or where Airflow cannot be installed or started.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from streamcoord.devtools.airflow import LocalAirflow, airflow_cached, airflow_python
from streamcoord.errors import EnvironmentProblem

__all__ = ["AIRFLOW_DAGS", "AIRFLOW_ENV", "DEMO_DAG", "airflow"]

AIRFLOW_ENV: Final = "STREAMCOORD_TEST_AIRFLOW"
AIRFLOW_DAGS: Final = Path(__file__).parent / "airflow" / "dags"
DEMO_DAG: Final = "streamcoord_demo"
_INSTALL_TIMEOUT_S: Final = 900


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"airflow: needs a real Airflow 3 (opt-in: {AIRFLOW_ENV}=1)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    cold = not airflow_cached()
    for item in items:
        if "airflow" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.airflow)
            item.add_marker(pytest.mark.slow)
            if cold:
                item.add_marker(pytest.mark.timeout(_INSTALL_TIMEOUT_S + 600))


@pytest.fixture(scope="session")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAirflow]:
    """An ``airflow standalone`` for the session, with the DAGs of ``tests/airflow/dags``."""
    if os.environ.get(AIRFLOW_ENV) != "1":
        pytest.skip(
            f"Airflow tests are opt-in: set {AIRFLOW_ENV}=1 (installs Airflow 3 into a venv of"
            " its own once, about a minute, and starts a standalone, about another)"
        )
    try:
        python = airflow_python(_INSTALL_TIMEOUT_S)
    except EnvironmentProblem as problem:
        pytest.skip(f"Airflow 3 cannot be installed here: {problem}")
    local = LocalAirflow(python, home=tmp_path_factory.mktemp("airflow"), dags=AIRFLOW_DAGS)
    try:
        local.start()
        local.wait_for_dag(DEMO_DAG)
    except EnvironmentProblem as problem:
        local.stop()
        pytest.skip(f"Airflow 3 did not start here: {problem}")
    try:
        yield local
    finally:
        local.stop()
