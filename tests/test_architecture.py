"""The import-linter contracts in pyproject.toml hold, and they really catch a violation.

Packages that do not exist yet (streamcoord is being built folder by folder) are left out of the
check rather than failing it; once they exist they are checked like the rest.
"""

from __future__ import annotations

import importlib.util
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


def _exists(module: str, root: str) -> bool:
    if module != root and not module.startswith(f"{root}."):
        return True  # external: import-linter accepts forbidden packages that are not installed
    spec = importlib.util.find_spec(module)
    return spec is not None and spec.origin is not None  # a bare folder is no package yet


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


def _existing_only(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    root = config["root_package"]
    missing: list[str] = []
    contracts = []
    for contract in config["contracts"]:
        kept = dict(contract)
        for key in ("source_modules", "forbidden_modules"):
            kept[key] = [m for m in contract[key] if _exists(m, root)]
            missing += [m for m in contract[key] if not _exists(m, root)]
        if kept["source_modules"]:
            contracts.append(kept)
    return {**config, "contracts": contracts}, sorted(set(missing))


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
    config, missing = _existing_only(_config())
    if not config["contracts"]:
        pytest.skip(f"no source package of any contract exists yet (missing: {missing})")
    code, output = _lint(_render(config), tmp_path)
    assert code == 0, output
    assert " 0 broken" in output, output  # the summary line "Contracts: N kept, 0 broken."


def test_contract_catches_a_forbidden_import(tmp_path: Path) -> None:
    """The same contract, applied to a throwaway package whose core imports aiokafka and asyncio."""
    package = tmp_path / "fakeroot"
    for sub in ("core", "spec", "events", "kafka", "runtime", "cli", "devtools", "telemetry"):
        (package / sub).mkdir(parents=True)
        (package / sub / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "core" / "__init__.py").write_text("import asyncio\nimport aiokafka\n")
    (package / "spec" / "__init__.py").write_text("from fakeroot.kafka import x\n")

    config = _config()
    fake = {**config, "root_package": "fakeroot", "contracts": [
        {**c, **{key: [m.replace("streamcoord", "fakeroot") for m in c[key]]
                 for key in ("source_modules", "forbidden_modules")}}
        for c in config["contracts"]
    ]}  # fmt: skip
    code, output = _lint(_render(fake), tmp_path, pythonpath=tmp_path)
    assert code == 1, output
    for chain in ("fakeroot.core -> asyncio", "fakeroot.core -> aiokafka",
                  "fakeroot.spec -> fakeroot.kafka"):  # fmt: skip
        assert chain in output, output
