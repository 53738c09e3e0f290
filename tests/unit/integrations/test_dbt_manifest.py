"""`streamcoord dbt import` without dbt: a manifest becomes a pipeline that validate accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from streamcoord.cli.main import app
from streamcoord.errors import ConfigError
from streamcoord.events import topology
from streamcoord.integrations.dbt_manifest import (
    ImportOptions,
    render_spec,
    spec_from_groups,
    spec_from_manifest,
)
from streamcoord.pipelines import validate_paths


def node(kind: str, name: str, *parents: str, package: str = "shop") -> dict[str, Any]:
    return {
        "resource_type": kind, "name": name, "package_name": package,
        "fqn": [package, "marts" if kind == "model" else "raw", name],
        "depends_on": {"nodes": list(parents)},
    }  # fmt: skip


MANIFEST: dict[str, Any] = {
    "metadata": {"project_name": "shop"},
    "nodes": {
        "seed.shop.raw_orders": node("seed", "raw_orders"),
        "model.shop.stg_orders": node("model", "stg_orders", "seed.shop.raw_orders"),
        "model.shop.Orders-Daily": node("model", "Orders-Daily", "model.shop.stg_orders"),
        "model.shop.customers": node(
            "model", "customers", "model.shop.stg_orders", "model.utils.calendar"
        ),
        "test.shop.unique_id": node("test", "unique_id", "model.shop.stg_orders"),
        "model.utils.calendar": node("model", "calendar", package="utils"),
        "snapshot.shop.customers": node("snapshot", "customers", "model.shop.customers"),
    },
}
OPTIONS = ImportOptions(project_dir="/srv/shop", profiles_dir="/srv/profiles")


def stages(spec: Any) -> dict[str, Any]:
    return {stage.name: stage for stage in spec.pipelines[0].stages}


def test_each_model_seed_and_snapshot_of_the_project_is_a_stage_that_needs_its_refs() -> None:
    by_name = stages(spec_from_manifest(MANIFEST, OPTIONS))
    assert {name: list(stage.needs) for name, stage in by_name.items()} == {
        "raw_orders": [],
        "stg_orders": ["raw_orders"],
        "orders-daily": ["stg_orders"],  # names made valid
        "customers": ["stg_orders"],  # a package's model is no stage, so no need
        "customers_snapshot": ["customers"],  # two nodes called customers: the type tells
    }
    executor = by_name["stg_orders"].executor
    assert executor.topic == topology.DBT_TRIGGERS
    assert executor.config == {
        "project_dir": "/srv/shop", "profiles_dir": "/srv/profiles",
        "select": ["fqn:shop.marts.stg_orders"],
    }  # fmt: skip


def test_the_generated_file_passes_validate(tmp_path: Path) -> None:
    options = ImportOptions(project_dir="/srv/shop", pool_slots=1, params={"day": "${ run_key }"})
    path = tmp_path / "shop.yaml"
    path.write_text(render_spec(spec_from_manifest(MANIFEST, options), "generated\nby a test"))
    report = validate_paths([path])
    assert report.ok, report.problems
    assert path.read_text().startswith("# generated\n# by a test\npipelines:\n")
    (pipeline,) = report.specs.pipelines
    assert pipeline.defaults.pool == "shop-dbt"
    assert report.specs.pools[0].slots == 1
    assert pipeline.stages[0].params == {"day": "${ run_key }"}


def test_selectors_become_stages_needing_the_selectors_their_nodes_ref() -> None:
    groups = {
        "staging": {"seed.shop.raw_orders", "model.shop.stg_orders"},
        "marts": {"model.shop.Orders-Daily", "model.shop.customers"},
        "snapshots": {"snapshot.shop.customers"},
    }
    by_name = stages(spec_from_groups(MANIFEST, groups, OPTIONS))
    assert {name: list(stage.needs) for name, stage in by_name.items()} == {
        "marts": ["staging"], "snapshots": ["marts"], "staging": [],
    }  # fmt: skip
    assert by_name["marts"].executor.config["selector"] == "marts"


def test_selectors_that_need_each_other_are_refused() -> None:
    groups = {"a": {"model.shop.stg_orders", "model.shop.customers"},
              "b": {"seed.shop.raw_orders", "snapshot.shop.customers"}}  # fmt: skip
    with pytest.raises(ConfigError, match="selectors depend on each other in a cycle"):
        spec_from_groups(MANIFEST, groups, OPTIONS)


def test_what_is_not_a_manifest_says_how_to_get_one() -> None:
    with pytest.raises(ConfigError, match="dbt parse"):
        spec_from_manifest({"metadata": {}}, OPTIONS)


def test_the_command_writes_the_spec_from_a_given_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(orjson.dumps(MANIFEST))
    result = CliRunner().invoke(app, [
        "dbt", "import", str(tmp_path), "--manifest", str(manifest), "--project-dir", "/srv/shop",
        "--command", "run", "--param", "day=${ run_key }",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "command: run" in result.stdout
    assert "day: ${ run_key }" in result.stdout
    assert "- fqn:shop.marts.customers" in result.stdout
