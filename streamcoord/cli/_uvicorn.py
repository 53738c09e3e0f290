"""uvicorn as the HTTP commands (``ingest``, ``serve``) run it: our own signal handling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator

import uvicorn

__all__ = ["QuietServer", "stop_on"]

log = logging.getLogger("streamcoord")


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: after a graceful stop it raises the signal
    again, so the process died of SIGTERM (exit -15) before the producer was flushed."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def stop_on(server: uvicorn.Server, before: Callable[[], None] = lambda: None) -> None:
    """On SIGTERM/SIGINT: ``before()``, then stop accepting and let open requests finish; a
    second signal stops waiting for them."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if server.should_exit:
            server.force_exit = True
            return
        log.info("%s: finishing open requests, then stopping", signal.Signals(signum).name)
        before()
        server.should_exit = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
