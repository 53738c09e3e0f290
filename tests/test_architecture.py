"""The import-linter contracts in pyproject.toml hold, and they really catch a violation.

The contracts are checked as written: a package a contract names that does not exist fails the
check (a rename must update the contracts), and the layers contract is exhaustive, so a new
package must be given a layer. ``make lint`` runs the same check (``lint-imports``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                "lint_imports_command()"]  # fmt: skip


def _config() -> dict[str, Any]:
    config: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _render(config: dict[str, Any]) -> str:
    lines = ["[tool.importlinter]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in config.items() if k != "contracts"]
    for contract in config["contracts"]:
        lines += ["", "[[tool.importlinter.contracts]]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in contract.items()]
    return "\n".join(lines) + "\n"


def _lint(config_text: str, workdir: Path, *, pythonpath: Path | None = None) -> tuple[int, str]:
    config_file = workdir / "importlinter.toml"
    config_file.write_text(config_text)
    env = None if pythonpath is None else {**os.environ, "PYTHONPATH": str(pythonpath)}
    result = subprocess.run(
        [*LINT_IMPORTS, "--no-cache", "--no-logo", str(config_file)],
        cwd=workdir, capture_output=True, text=True, check=False, env=env, timeout=60,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def test_pyproject_forbids_external_packages_it_names() -> None:
    assert _config().get("include_external_packages") is True


def test_import_contracts_hold(tmp_path: Path) -> None:
    code, output = _lint(_render(_config()), tmp_path)
    assert code == 0, output
    assert " 0 broken" in output, output  # the summary line "Contracts: N kept, 0 broken."


def test_every_package_has_a_layer() -> None:
    [layers] = [c for c in _config()["contracts"] if c["type"] == "layers"]
    layered = {name.strip() for layer in layers["layers"] for name in layer.split("|")}
    package = ROOT / "streamcoord"
    children = {p.stem for p in package.glob("*.py") if p.stem != "__init__"} | {
        p.parent.name for p in package.glob("*/__init__.py")}  # fmt: skip
    assert children == layered


_MODULE_KEYS = ("source_modules", "forbidden_modules", "modules", "containers")
# One violation per contract, in a throwaway package laid out like streamcoord.
_VIOLATIONS = {
    "core/__init__.py": "import asyncio\nimport aiokafka\n",  # forbidden: the core is pure
    "pipelines/__init__.py": "from fakeroot.kafka import x\n",  # forbidden, and a layer upward
    "events/__init__.py": "from fakeroot.core import y\n",  # a layer upward
    "runtime/__init__.py": "from fakeroot.worker import z\n",  # independent shells
    "kafka/__init__.py": "from fakeroot.telemetry import w\n",  # independent siblings
    "testing/__init__.py": "import aiokafka\n",  # Kafka outside the ports
    "plugins/__init__.py": "",  # a package without a layer
}


def test_contracts_catch_each_kind_of_violation(tmp_path: Path) -> None:
    package = tmp_path / "fakeroot"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module in ("demo", "errors"):
        (package / f"{module}.py").write_text("")
    [layers] = [c for c in _config()["contracts"] if c["type"] == "layers"]
    layered = {name.strip() for layer in layers["layers"] for name in layer.split("|")}
    # every layered package (a new one joins without editing this test), and one without a layer
    for sub in [*sorted(layered - {"demo", "errors"}), "plugins"]:
        (package / sub).mkdir()
        (package / sub / "__init__.py").write_text("")
    for path, text in _VIOLATIONS.items():
        (package / path).write_text(text)

    config = _config()
    # a contract's ignored imports name real modules the throwaway package does not have
    fake = {**config, "root_package": "fakeroot", "contracts": [
        {**{k: v for k, v in c.items() if k != "ignore_imports"},
         **{key: [m.replace("streamcoord", "fakeroot") for m in c[key]]
            for key in _MODULE_KEYS if key in c}}
        for c in config["contracts"]
    ]}  # fmt: skip
    code, output = _lint(_render(fake), tmp_path, pythonpath=tmp_path)
    assert code == 1, output
    flat = " ".join(output.split())
    assert f"0 kept, {len(config['contracts'])} broken" in flat, output  # each contract caught one
    for text in ("fakeroot.core -> asyncio", "fakeroot.core -> aiokafka",
                 "fakeroot.pipelines -> fakeroot.kafka", "fakeroot.events -> fakeroot.core",
                 "fakeroot.runtime -> fakeroot.worker", "fakeroot.kafka -> fakeroot.telemetry",
                 "fakeroot.plugins"):  # fmt: skip
        assert text in flat, output


_PROBE = """\
import os
import random
import time
import uuid
from datetime import date, datetime


def now() -> object:
    return datetime.now(), datetime.utcnow(), date.today(), os, random, time, uuid
"""


def _banned(filename: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--output-format", "concise",
         "--stdin-filename", filename, "-"],
        cwd=ROOT, input=_PROBE, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    return sorted(line.split("`")[1] for line in result.stdout.splitlines() if "TID251" in line)


@pytest.mark.parametrize(
    "filename", ["streamcoord/core/_probe.py", "streamcoord/pipelines/triggers/_probe.py"]
)
def test_the_core_may_not_read_the_clock_randomness_or_the_environment(filename: str) -> None:
    assert _banned(filename) == [
        "datetime.date.today",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "os",
        "random",
        "time",
        "uuid",
    ]


def test_the_shells_may() -> None:
    assert _banned("streamcoord/runtime/_probe.py") == []
