"""Child processes of the dev tools: a build whose output is followed line by line, and
stopping a service started here (the local broker, Jaeger, toxiproxy) by its pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

__all__ = ["follow_command", "stop_service"]

#: How many of a command's last output lines an error shows.
TAIL_LINES = 8


def stop_service(
    pid: int,
    process: subprocess.Popen[bytes] | None,
    pid_file: Path,
    *,
    timeout: float,
    alive: Callable[[int], bool],
) -> None:
    """SIGTERM, SIGKILL after ``timeout``; then forget the pid file.

    ``process`` is our own child when this process started it (then its exit is reaped);
    otherwise ``alive(pid)`` tells whether the detached service is still running.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_exit(pid, process, timeout, alive):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, process, 5.0, alive)
    pid_file.unlink(missing_ok=True)


def _wait_exit(
    pid: int,
    process: subprocess.Popen[bytes] | None,
    timeout: float,
    alive: Callable[[int], bool],
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (process.poll() is not None) if process is not None else not alive(pid):
            return True
        time.sleep(0.1)
    return False


def follow_command(
    command: list[str],
    *,
    cwd: Path,
    out: TextIO,
    progress: Callable[[str], None],
    env: Mapping[str, str] | None = None,
) -> tuple[int, list[str]]:
    """Run ``command``, copying its output to ``out`` and each line to ``progress``; return its
    exit code and its last lines.

    The context manager closes the stdout pipe and reaps the child even when ``progress``
    raises (an unclosed pipe is a ResourceWarning, which the test suite fails on); an
    interrupted run kills the child rather than leave a build running in the background.
    """
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=None if env is None else dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    ) as process:
        assert process.stdout is not None
        tail: list[str] = []
        try:
            for line in process.stdout:
                out.write(line)
                tail = [*tail[-(TAIL_LINES - 1) :], line.rstrip()]
                progress(line.rstrip())
        except BaseException:
            process.kill()
            raise
        return process.wait(), tail
