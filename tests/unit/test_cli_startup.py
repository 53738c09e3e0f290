"""The command line starts without the heavy libraries: a command imports what it uses when it
runs, so `streamcoord emit --help` (and the start of every command) stays quick."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Modules that cost tens to hundreds of milliseconds each to import.
HEAVY = (
    "aiokafka",
    "fastapi",
    "starlette",
    "uvicorn",
    "opentelemetry",
    "cryptography",
    "cel",
    "prompt_toolkit",
    "streamcoord.core",
    "streamcoord.pipelines",
    "streamcoord.events.models",
    "streamcoord.runtime",
    "streamcoord.kafka",
    "streamcoord.emit",
)

PROBE = """
import json, sys
from typer.testing import CliRunner
from streamcoord.cli.main import app
args = sys.argv[1:]
if args:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {"aiokafka", "fastapi",
      "starlette", "uvicorn", "opentelemetry", "cryptography", "cel", "prompt_toolkit"}
      or m.startswith(("streamcoord.core", "streamcoord.pipelines", "streamcoord.events.models",
                       "streamcoord.runtime", "streamcoord.kafka", "streamcoord.emit")))))
"""


def heavy_modules_after(*args: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after importing the CLI (and running
    ``args``)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return [name for name in loaded if name.startswith(HEAVY)]


@pytest.mark.parametrize(
    "args",
    [(), ("--version",), ("emit", "--help")],
    ids=["import", "version", "emit-help"],
)
def test_the_cli_starts_without_kafka_web_or_telemetry_libraries(args: tuple[str, ...]) -> None:
    assert heavy_modules_after(*args) == []


def test_the_probe_sees_a_heavy_import_when_a_command_makes_one() -> None:
    # `validate` loads the spec models to do its work: the probe must notice them
    assert "streamcoord.pipelines" in heavy_modules_after("validate", "examples/")
