"""dbt in its child process, with a real dbt-core and DuckDB: results, errors, cancellation."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamcoord.cli.main import app
from streamcoord.pipelines import validate_paths
from streamcoord.worker.dbt_process import invoke_dbt
from streamcoord.worker.shell import group_running

pytestmark = pytest.mark.timeout(180)


def project_args(project: Path) -> list[str]:
    return ["--project-dir", str(project), "--profiles-dir", str(project)]


async def test_cancelling_stops_dbt_and_everything_it_started(
    dbt_python: str, shop_project: Path
) -> None:
    started = asyncio.Event()

    async def on_start(unique_id: str) -> None:
        if unique_id == "model.shop.orders_daily":
            started.set()

    args = ["run", "--select", "orders_daily", "--vars", '{"slow_daily": true}']
    call = asyncio.create_task(
        invoke_dbt([*args, *project_args(shop_project)], python=dbt_python, on_start=on_start,
                   kill_grace_s=5.0)
    )  # fmt: skip
    async with asyncio.timeout(120):
        await started.wait()  # the query that would run for hours is running
    running = dbt_processes(shop_project)
    assert running  # dbt runs in a child process
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    # cancelling returned only once dbt's process group was gone
    assert not any(group_running(pid) for pid in running)
    assert dbt_processes(shop_project) == []


def dbt_processes(project: Path) -> list[int]:
    """Pids of the dbt child processes working on ``project``."""
    return [
        int(proc.name) for proc in Path("/proc").iterdir()
        if proc.name.isdigit() and "dbt_child.py" in (line := _cmdline(proc))
        and str(project) in line
    ]  # fmt: skip


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


async def test_a_bad_selection_is_an_error_of_dbt_itself(
    dbt_python: str, shop_project: Path
) -> None:
    result = await invoke_dbt(
        ["build", "--selector", "no_such_selector", *project_args(shop_project)], python=dbt_python
    )
    assert result.exit_code == 2
    assert result.error is not None
    assert "no_such_selector" in result.error


async def test_a_python_without_dbt_says_so(shop_project: Path) -> None:
    result = await invoke_dbt(["build", *project_args(shop_project)], python=sys.executable)
    assert result.error is not None
    assert result.error.startswith(f"dbt-core is not installed for {sys.executable}")


def test_import_per_selector_asks_dbt_which_nodes_each_selector_takes(
    dbt_python: str, shop_project: Path
) -> None:
    output = shop_project.parent / "shop.yaml"
    result = CliRunner().invoke(app, [
        "dbt", "import", str(shop_project), "--per", "selector", "--profiles-dir",
        str(shop_project), "--dbt-python", dbt_python, "-o", str(output),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = validate_paths([output])
    assert report.ok, report.problems
    (pipeline,) = report.specs.pipelines
    assert {stage.name: stage.needs for stage in pipeline.stages} == {
        "marts": ["staging"], "staging": [],
    }  # fmt: skip
