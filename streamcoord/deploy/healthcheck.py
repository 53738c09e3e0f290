"""The container image's ``HEALTHCHECK``: ask the health endpoint of whatever role PID 1 runs.

One image serves every role, so the check reads the main process's command line
(``/proc/1/cmdline``) to find where that role answers ``GET /healthz``: ``run`` on its health
port, ``worker ...`` on the worker health port, ``serve`` and ``ingest`` on their ``--port``.
``STREAMCOORD_HEALTHCHECK_URL`` overrides the guess. A role without an endpoint (a one-off
command such as ``topics apply``) counts as healthy. :func:`healthcheck_url` is pure.

Run as ``python -m streamcoord.deploy.healthcheck``; exit status 0 healthy, 1 not.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

__all__ = ["DEFAULT_PORTS", "healthcheck_url", "main"]

#: Where each role listens when neither its options nor the environment say otherwise (the
#: image sets STREAMCOORD_HEALTH_PORT and STREAMCOORD_WORKER_HEALTH_PORT to these).
DEFAULT_PORTS: Final = {"run": 8081, "worker": 8082, "serve": 8080, "ingest": 8080}
_PORT_OPTION: Final = {"run": "--health-port", "serve": "--port", "ingest": "--port"}
_PORT_ENV: Final = {"run": "STREAMCOORD_HEALTH_PORT", "worker": "STREAMCOORD_WORKER_HEALTH_PORT"}


def healthcheck_url(argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """The URL to check for a process started as ``argv``; None when its role serves none."""
    override = environ.get("STREAMCOORD_HEALTHCHECK_URL")
    if override:
        return override
    role = _role(argv)
    if role is None:
        return None
    port = _option(argv, _PORT_OPTION.get(role)) or environ.get(_PORT_ENV.get(role, ""))
    return f"http://127.0.0.1:{port or DEFAULT_PORTS[role]}/healthz"


def _role(argv: Sequence[str]) -> str | None:
    """The command after the program (``python``, the ``streamcoord`` script, ``-m module``)."""
    for argument in argv:
        name = argument.rsplit("/", 1)[-1]
        if argument.startswith("-") or _is_program(name):
            continue
        return argument if argument in DEFAULT_PORTS else None  # `topics apply`, ...
    return None


def _is_program(name: str) -> bool:
    return name.startswith(("python", "streamcoord"))


def _option(argv: Sequence[str], name: str | None) -> str | None:
    if name is None:
        return None
    for index, argument in enumerate(argv):
        if argument == name and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith(f"{name}="):
            return argument.split("=", 1)[1]
    return None


def main() -> int:
    """Check the main process's endpoint; 0 when it answers 200."""
    try:
        argv = Path("/proc/1/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        argv = []
    url = healthcheck_url(argv, os.environ)
    if url is None:
        return 0
    try:
        with urllib.request.urlopen(url, timeout=3.0) as response:  # noqa: S310 - loopback http
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as error:
        print(f"unhealthy: {url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
