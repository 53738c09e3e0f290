"""docs/configuration.md matches the settings models: every option, variable and default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamcoord.cli.main import app
from streamcoord.deploy.configuration import (
    CONFIGURATION_REFERENCE,
    SETTINGS_MODELS,
    environment_variable,
    render_configuration_reference,
)
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.runtime.settings import CoordinatorSettings

ROOT = Path(__file__).parents[3]


def test_committed_reference_is_not_stale() -> None:
    committed = (ROOT / CONFIGURATION_REFERENCE).read_text(encoding="utf-8")
    assert committed == render_configuration_reference(), (
        "run `streamcoord docs configuration` and commit docs/configuration.md"
    )


def test_every_settings_model_in_the_package_is_in_the_reference() -> None:
    defined = {
        match.group(1)
        for path in (ROOT / "streamcoord").rglob("*.py")
        for match in re.finditer(r"^class (\w+)\(BaseSettings\)", path.read_text(), re.M)
    }
    assert defined == {entry.model.__name__ for entry in SETTINGS_MODELS}


def test_every_option_has_a_row_with_its_variable_default_and_description() -> None:
    text = render_configuration_reference()
    for entry in SETTINGS_MODELS:
        for name in entry.model.model_fields:
            row = next(
                line for line in text.splitlines()
                if line.startswith(f"| `{name}` | `{environment_variable(entry.model, name)}`")
            )  # fmt: skip
            cells = [cell.strip() for cell in row.strip("|").split(" | ")]
            assert len(cells) == 5, row
            assert all(cells), f"{entry.model.__name__}.{name} has an empty cell: {row}"


def test_the_documented_variables_are_the_ones_the_models_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(environment_variable(CoordinatorSettings, "max_batch"), "7")
    monkeypatch.setenv(environment_variable(KafkaSettings, "client_id"), "from-env")
    assert CoordinatorSettings().max_batch == 7
    assert KafkaSettings().client_id == "from-env"


def test_every_setting_is_described_by_its_model() -> None:
    undescribed = [
        f"{entry.model.__name__}.{name}"
        for entry in SETTINGS_MODELS
        for name, info in entry.model.model_fields.items()
        if not info.description
    ]
    assert undescribed == []


def test_defaults_and_bounds_are_shown() -> None:
    text = render_configuration_reference()
    assert (
        '| `bootstrap_servers` | `STREAMCOORD_KAFKA_BOOTSTRAP_SERVERS` | str | `"127.0.0.1:9092"` |'
        in text
    )
    assert "| `max_batch` | `STREAMCOORD_MAX_BATCH` | int (>= 1, <= 100000) | `500` |" in text
    assert "| `instance_id` | `STREAMCOORD_INSTANCE_ID` | str or unset | unset |" in text


def test_check_fails_on_a_stale_file_and_passes_once_written(tmp_path: Path) -> None:
    target = tmp_path / "configuration.md"
    target.write_text("old\n")
    runner = CliRunner()
    stale = runner.invoke(app, ["docs", "configuration", "--check", "-o", str(target)])
    assert stale.exit_code != 0
    assert target.read_text() == "old\n"
    assert runner.invoke(app, ["docs", "configuration", "-o", str(target)]).exit_code == 0
    fresh = runner.invoke(app, ["docs", "configuration", "--check", "-o", str(target)])
    assert fresh.exit_code == 0, fresh.output
