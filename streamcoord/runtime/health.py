"""A tiny HTTP health endpoint: liveness and readiness of one process.

- ``GET /livez``: 200 whenever the server answers at all; it runs on the process's event loop, so
  an answer means the process and its loop are alive.
- ``GET /readyz``: 200 once the snapshot says ``ready`` (a coordinator: its assigned partitions
  are restored and consumed), else 503 with the snapshot's ``reason``.
- ``GET /healthz`` (and ``/``): the same as ``/readyz``, for clients of earlier releases.

Requests are parsed by :func:`respond` (pure) and served by :class:`HealthServer`. A request
head over :data:`MAX_HEAD_BYTES` is answered 431, one that is not HTTP 400, and the connection
is closed: whatever a client sends, the server logs at most one debug line for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from typing import Any, Final

import orjson

__all__ = ["MAX_HEAD_BYTES", "HealthServer", "respond"]

log = logging.getLogger(__name__)

#: Request line and headers together; a health probe sends a few hundred bytes.
MAX_HEAD_BYTES: Final = 8192
#: How long a client may take to send its request head.
READ_TIMEOUT_S: Final = 5.0

_REASONS: Final = {
    200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 431: "Request Header Fields Too Large", 503: "Service Unavailable",
}  # fmt: skip
_REQUEST_LINE: Final = re.compile(rb"([A-Z]+) (/[!-~]*) HTTP/1\.[01]")
_READINESS: Final = frozenset({b"/readyz", b"/healthz", b"/health", b"/"})

Snapshot = Callable[[], dict[str, Any]]


def respond(head: bytes, snapshot: Snapshot) -> tuple[int, dict[str, Any]]:
    """The status and JSON body answering the request head ``head`` (request line + headers)."""
    match = _REQUEST_LINE.fullmatch(head.split(b"\r\n", 1)[0])
    if match is None:
        return 400, {"error": "bad request", "expected": "GET /readyz HTTP/1.1"}
    method, target = match.groups()
    if method not in (b"GET", b"HEAD"):
        return 405, {"error": "method not allowed", "allowed": ["GET", "HEAD"]}
    path = target.split(b"?", 1)[0]
    if path == b"/livez":
        return 200, {"status": "alive"}
    if path in _READINESS:
        body = snapshot()
        return (200 if body.get("ready") else 503), body
    return 404, {"error": "not found", "try": ["/livez", "/readyz", "/healthz"]}


def _response(code: int, body: dict[str, Any], *, with_body: bool = True) -> bytes:
    payload = orjson.dumps(body, option=orjson.OPT_INDENT_2)
    head = (
        f"HTTP/1.1 {code} {_REASONS[code]}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + (payload if with_body else b"")


class HealthServer:
    """Serves :func:`respond`'s answers; no framework, because it answers two questions."""

    def __init__(self, snapshot: Snapshot, host: str, port: int) -> None:
        self._snapshot = snapshot
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, limit=MAX_HEAD_BYTES
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            answer, rejected = await self._answer(reader)
            if answer:
                writer.write(answer)
                await writer.drain()
            if rejected:  # unread input left: let the client read the answer before closing
                writer.write_eof()
                await _discard(reader)
        except (ConnectionError, TimeoutError) as exc:  # the client went away: nothing to say
            log.debug("health check connection ended early: %r", exc)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[bytes, bool]:
        """The response, and whether the request was rejected unread."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
        except (asyncio.LimitOverrunError, ValueError):
            return _response(431, {"error": f"request head over {MAX_HEAD_BYTES} bytes"}), True
        except asyncio.IncompleteReadError as exc:  # EOF before the blank line
            return (_response(400, {"error": "incomplete request"}) if exc.partial else b""), False
        except TimeoutError:
            return _response(408, {"error": f"no request within {READ_TIMEOUT_S:.0f}s"}), True
        code, body = respond(head, self._snapshot)
        return _response(code, body, with_body=not head.startswith(b"HEAD ")), code == 400


async def _discard(
    reader: asyncio.StreamReader, *, limit: int = 1 << 20, within_s: float = 1.0
) -> None:
    """Read what the client still sends (bounded), so closing does not reset the connection
    before the client has read the answer."""
    deadline = time.monotonic() + within_s
    read = 0
    with contextlib.suppress(TimeoutError, ConnectionError):
        while read < limit and (left := deadline - time.monotonic()) > 0:
            chunk = await asyncio.wait_for(reader.read(65536), left)
            if not chunk:
                return
            read += len(chunk)
