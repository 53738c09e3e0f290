"""Python environments of their own for tools whose pins clash with streamcoord's: dbt, Airflow.

``tool_python("dbt", ["dbt-core~=1.11.0", ...])`` creates a virtual environment once under the
streamcoord cache (``venvs/<name>-<hash of the requirements>``), installs the requirements with
pip and returns its Python; later calls return it at once. A lock keeps two test sessions from
building the same one; a half-built environment (an interrupted install) is built again.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from streamcoord.devtools._jars import cache_root
from streamcoord.errors import EnvironmentProblem

__all__ = ["tool_python", "tool_venv_dir"]

_COMPLETE: Final = ".streamcoord-complete"
_TAIL: Final = 2000


def tool_venv_dir(name: str, requirements: Sequence[str]) -> Path:
    """Where the environment for ``requirements`` lives (whether built or not)."""
    digest = hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()[:12]
    return cache_root() / "venvs" / f"{name}-{digest}"


def tool_python(name: str, requirements: Sequence[str], *, timeout_s: float = 600.0) -> Path:
    """The Python of an environment with ``requirements``, built on first use (bounded).

    Raises :class:`EnvironmentProblem` when it cannot be built (no network to the package
    index, a requirement that does not install, the time limit).
    """
    directory = tool_venv_dir(name, requirements)
    python = directory / "bin" / "python"
    if (directory / _COMPLETE).is_file():
        return python
    directory.parent.mkdir(parents=True, exist_ok=True)
    with (directory.parent / f"{directory.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building it: wait for it
        if (directory / _COMPLETE).is_file():
            return python
        shutil.rmtree(directory, ignore_errors=True)
        started = time.monotonic()
        _run([sys.executable, "-m", "venv", str(directory)], timeout_s, f"create the {name} venv")
        left = max(timeout_s - (time.monotonic() - started), 1.0)
        _run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
             *requirements],
            left, f"install {' '.join(requirements)}",
        )  # fmt: skip
        (directory / _COMPLETE).write_text(" ".join(requirements) + "\n", encoding="utf-8")
    return python


def _run(command: list[str], timeout_s: float, what: str) -> None:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(f"could not {what} within {timeout_s:.0f}s") from None
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-_TAIL:]
        raise EnvironmentProblem(
            f"could not {what} (exit code {done.returncode}):\n{output}",
            hint="check that the package index is reachable",
        )
