"""A throwaway Airflow 3 for tests and demos: ``airflow standalone`` with SQLite, on loopback.

Airflow is installed into a virtual environment of its own (it pins many packages; never into
the project's), built once into the streamcoord cache by :func:`airflow_python`. Then::

    with LocalAirflow(python, home=tmp / "airflow", dags=Path("tests/airflow/dags")) as airflow:
        airflow.wait_for_dag("streamcoord_demo")
        ...  # airflow.base_url, airflow.username, airflow.password

Every port it opens is a free one on 127.0.0.1 (API server, log servers), its usage-data
collection is off, and stopping it stops its whole process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import httpx

from streamcoord.devtools.kafka import free_port
from streamcoord.devtools.tool_venv import tool_python, tool_venv_dir
from streamcoord.errors import EnvironmentProblem

__all__ = ["AIRFLOW_REQUIREMENTS", "LocalAirflow", "airflow_cached", "airflow_python"]

AIRFLOW_REQUIREMENTS: Final = ("apache-airflow~=3.3.0",)
_POLL_S: Final = 0.5  # another process: nothing to await but its answers


def airflow_cached() -> bool:
    """Whether the Airflow venv is built already (no install needed)."""
    return (tool_venv_dir("airflow", AIRFLOW_REQUIREMENTS) / "bin" / "airflow").exists()


def airflow_python(timeout_s: float = 900.0) -> Path:
    """The Python of the Airflow venv, built on first use; raises EnvironmentProblem."""
    return tool_python("airflow", AIRFLOW_REQUIREMENTS, timeout_s=timeout_s)


class LocalAirflow:
    """``airflow standalone`` in ``home`` with the DAGs of ``dags``; a context manager."""

    def __init__(
        self,
        python: Path,
        *,
        home: Path,
        dags: Path,
        username: str = "admin",
        password: str = "streamcoord-test",  # noqa: S107  # a local throwaway instance
        startup_timeout_s: float = 240.0,
    ) -> None:
        self.python = python
        self.home = home
        self.dags = dags
        self.username = username
        self.password = password
        self.startup_timeout_s = startup_timeout_s
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = home / "standalone.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._token: str | None = None

    def environment(self) -> dict[str, str]:
        bin_dir = str(self.python.parent)  # on PATH: standalone runs `airflow` commands
        return {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        }

    def start(self) -> None:
        """Start it and wait (bounded) until its API answers; raises EnvironmentProblem."""
        self.home.mkdir(parents=True, exist_ok=True)
        # The simple auth manager reads the users' passwords from this file (else: random ones).
        passwords = self.home / "simple_auth_manager_passwords.json.generated"
        passwords.write_text(f'{{"{self.username}": "{self.password}"}}', encoding="utf-8")
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                [str(self.python.parent / "airflow"), "standalone"], env=self.environment(),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self.home,
            )  # fmt: skip
        try:
            self._until(self._answers, "its API to answer")
        except EnvironmentProblem:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM to its process group, SIGKILL after 30 s."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # children that outlived the leader
            os.killpg(process.pid, signal.SIGKILL)

    def token(self) -> str:
        """A bearer token for the API."""
        if self._token is None:
            response = httpx.post(
                f"{self.base_url}/auth/token",
                json={"username": self.username, "password": self.password},
                timeout=30,
            )
            response.raise_for_status()
            self._token = str(response.json()["access_token"])
        return self._token

    def get(self, path: str) -> httpx.Response:
        """GET ``path`` of the API with a token."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        return httpx.get(f"{self.base_url}{path}", headers=headers, timeout=30)

    def wait_for_dag(self, dag_id: str) -> None:
        """Wait (bounded) until the DAG processor has parsed ``dag_id``."""
        self._until(lambda: self.get(f"/api/v2/dags/{dag_id}").status_code == 200,
                    f"DAG {dag_id} to be parsed")  # fmt: skip

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/api/v2/version", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def _until(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise EnvironmentProblem(
                    f"airflow standalone exited with code {self._process.returncode}"
                    f" while waiting for {what}:\n{self._log_tail()}"
                )
            if ready():
                return
            time.sleep(_POLL_S)
        raise EnvironmentProblem(
            f"Airflow did not get ready within {self.startup_timeout_s:.0f}s (waiting for"
            f" {what}):\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-3000:]
        return ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
