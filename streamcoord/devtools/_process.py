"""Stopping a service process started here (the local broker, Jaeger), by its pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["stop_service"]


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
