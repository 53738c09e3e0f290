"""The tools the dbt and Airflow executors drive, for tests, as a pytest plugin
(``pytest_plugins`` in ``tests/conftest.py``).

* ``dbt_python``: the Python of a venv with dbt-core and dbt-duckdb, built once into the
  streamcoord cache (their pins clash with the project's: mypy needs pathspec>=1, dbt-core <0.13).
  Tests using it are skipped, reason printed, when it cannot be built here.
* The Airflow fixtures live in ``tests/airflow_fixtures.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Final

import pytest

from streamcoord.devtools.tool_venv import tool_python, tool_venv_dir
from streamcoord.errors import EnvironmentProblem

__all__ = ["DBT_REQUIREMENTS", "SHOP_PROJECT", "dbt_python", "shop_project"]

#: dbt-core 1.12 needs a parser package that downloads a wheel from outside the package index
#: when it installs, which cannot work here; 1.11 installs from the index alone.
DBT_REQUIREMENTS: Final = ("dbt-core~=1.11.0", "dbt-duckdb~=1.11.0")
#: The small dbt project the tests run (a seed, three models, tests, two YAML selectors).
SHOP_PROJECT: Final = Path(__file__).parent / "dbt" / "shop"
_BUILD_TIMEOUT_S: Final = 600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    cold = not (tool_venv_dir("dbt", DBT_REQUIREMENTS) / "bin" / "python").exists()
    for item in items:
        if "dbt_python" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
            if cold:  # the first test builds the venv (about 45 s here, more on a slow network)
                item.add_marker(pytest.mark.timeout(_BUILD_TIMEOUT_S + 120))


@pytest.fixture(scope="session")
def dbt_python() -> str:
    """A Python that has dbt-core and dbt-duckdb."""
    try:
        return str(tool_python("dbt", DBT_REQUIREMENTS, timeout_s=_BUILD_TIMEOUT_S))
    except EnvironmentProblem as problem:
        pytest.skip(f"dbt-core cannot be installed into a venv here: {problem}")


@pytest.fixture
def shop_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shop project (dbt writes into its directory); its DuckDB file is
    ``shop.duckdb`` beside it (``SHOP_DUCKDB_PATH``, which its profile reads, is set)."""
    project = tmp_path / "shop"
    shutil.copytree(SHOP_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs"))
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(tmp_path / "shop.duckdb"))
    return project
