"""The demo's ``streamcoord serve``: started detached next to the demo, left running after it
(like the demo's broker), so its URL and token still work when the demo has printed them.

Its files live in ``<cache>/demo-serve`` (``STREAMCOORD_CACHE``, default ~/.cache/streamcoord):
the pid, the admin token (mode 0600, the demo's own: printed again by a later demo), the log and
the read model's SQLite file. ``streamcoord demo --stop-serve`` stops it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from streamcoord.auth import hash_token, new_token
from streamcoord.devtools._jars import cache_root
from streamcoord.devtools._process import stop_service
from streamcoord.kafka.settings import KafkaSettings

__all__ = ["DemoServe", "start_demo_serve", "stop_demo_serve", "wait_ready"]


@dataclass(frozen=True)
class DemoServe:
    url: str
    token: str
    log: Path
    reused: bool


def _home() -> Path:
    return cache_root() / "demo-serve"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _running_pid() -> int | None:
    try:
        pid = int((_home() / "pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def start_demo_serve(
    kafka: KafkaSettings, specs: Sequence[Path], port: int, config: Path | None
) -> DemoServe:
    """Start ``streamcoord serve`` detached (or find the one a previous demo left running)."""
    home = _home()
    home.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    log = home / "serve.log"
    token_file = home / "token"
    if _running_pid() is not None and token_file.exists():
        return DemoServe(url, token_file.read_text().strip(), log, reused=True)
    token = new_token()
    token_file.touch(mode=0o600)
    token_file.write_text(token + "\n")
    entry = {"name": "demo-admin", "role": "admin", "sha256": hash_token(token)}
    command = [
        sys.executable, "-m", "streamcoord.cli.main", "serve", "--port", str(port),
        "--database", f"sqlite:///{home / 'readmodel.db'}", "--rebuild",
        "-b", kafka.bootstrap_servers, "--topic-prefix", kafka.topic_prefix,
        *(arg for path in specs for arg in ("--spec", str(path.resolve()))),
        *(["--config", str(config)] if config else []),
    ]  # fmt: skip
    env = {**os.environ, "STREAMCOORD_AUTH_TOKENS": orjson.dumps([entry]).decode()}
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # it outlives the demo, like the detached broker
        )  # fmt: skip
    (home / "pid").write_text(str(process.pid))
    return DemoServe(url, token, log, reused=False)


def wait_ready(serve: DemoServe, timeout_s: float) -> bool:
    """Whether the API answers ``/readyz`` within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{serve.url}/readyz", timeout=2).status_code == 200:
                return True
        if _running_pid() is None:
            return False
        time.sleep(0.2)  # a child process's readiness has no event to await from here
    return False


def stop_demo_serve() -> bool:
    """Stop the demo's serve; False when none was running."""
    pid = _running_pid()
    if pid is None:
        return False
    stop_service(pid, None, _home() / "pid", timeout=15, alive=_alive)
    return True
