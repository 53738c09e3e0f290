"""A throwaway PostgreSQL cluster from the machine's packages (``initdb``/``pg_ctl``).

The session starts one on a free port on 127.0.0.1, in a temporary directory, and stops it at
the end; tests get a fresh database each. ``initdb`` refuses to run as root: as root the cluster
runs as the ``postgres`` user (``runuser``). Without the binaries the tests skip with the reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PostgresCluster", "postgres_binaries", "provide_postgres"]


def postgres_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (newest PostgreSQL first), if any."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(os.path.realpath(found)).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresCluster:
    """One running cluster; :meth:`database` makes a fresh database and gives its URL."""

    def __init__(self, binaries: Path, workdir: Path) -> None:
        self.binaries, self.data = binaries, workdir / "data"
        self.port = _free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(workdir, "postgres")
        self._count = 0

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as_user, *args], capture_output=True, text=True,
                              check=False, timeout=120)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self) -> None:
        self._run(str(self.binaries / "initdb"), "-D", str(self.data), "-A", "trust",
                  "-U", "postgres", "--no-sync")  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.data / "server.log"), "-w", "-t", "60", "start")  # fmt: skip

    def stop(self) -> None:
        self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def database(self) -> str:
        """The URL of a new, empty database."""
        import psycopg

        self._count += 1
        name = f"readmodel_{self._count}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # the name is ours: no injection
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


def provide_postgres() -> Iterator[PostgresCluster]:
    """A started cluster for the session, or a skip that says why there is none.

    Its folder is a fresh one under the system's temporary directory: pytest's own is private
    to root, where the ``postgres`` user could not reach it."""
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip(
            "PostgreSQL is not installed (no initdb/pg_ctl; .ci/run installs the "
            "postgresql package)"
        )
    if os.geteuid() == 0 and not _user_exists("postgres"):
        pytest.skip("initdb refuses root and there is no postgres user to run it as")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install -e '.[dev]')")
    workdir = Path(tempfile.mkdtemp(prefix="streamcoord-postgres-"))
    cluster = PostgresCluster(binaries, workdir)
    try:
        cluster.start()
        yield cluster
    finally:
        if (cluster.data / "postmaster.pid").exists():
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
