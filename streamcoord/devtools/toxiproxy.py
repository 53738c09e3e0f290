"""Toxiproxy (network faults on demand) on one machine, built from the Go module proxy.

``build_toxiproxy`` runs ``go install github.com/Shopify/toxiproxy/v2/cmd/server@<version>``
once with ``GOBIN`` in the cache and keeps the binary as
``<cache>/toxiproxy/<version>/toxiproxy-server``; later starts reuse it with no network. The
build takes about a minute on 2 cores.

``LocalToxiproxy`` runs the server on 127.0.0.1 and drives it through its HTTP API on loopback:
a proxy forwards a local port to an upstream (here: a Kafka listener), and *toxics* on it add
latency, drop data and close connections (``timeout``), or reset connections (``reset_peer``);
disabling a proxy closes every connection through it and refuses new ones until re-enabled.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from streamcoord.devtools._go import go_install
from streamcoord.devtools._process import stop_service
from streamcoord.devtools.kafka import cache_root, check_port_free, free_port
from streamcoord.errors import EnvironmentProblem

__all__ = [
    "DEFAULT_TOXIPROXY_VERSION",
    "TOXIPROXY_PACKAGE",
    "LocalToxiproxy",
    "ToxiproxyError",
    "binary_path",
    "build_toxiproxy",
    "toxiproxy_cached",
]

DEFAULT_TOXIPROXY_VERSION = "v2.12.0"
TOXIPROXY_PACKAGE = "github.com/Shopify/toxiproxy/v2/cmd/server"

Progress = Callable[[str], None]


class ToxiproxyError(EnvironmentProblem):
    """The toxiproxy server refused or failed an API call."""


def _no_progress(line: str) -> None:
    """Progress sink that drops every line."""


def binary_path(version: str = DEFAULT_TOXIPROXY_VERSION, *, cache: Path | None = None) -> Path:
    """Where the built server of ``version`` lives (whether or not it exists yet)."""
    return (cache or cache_root()) / "toxiproxy" / version / "toxiproxy-server"


def toxiproxy_cached(
    version: str = DEFAULT_TOXIPROXY_VERSION, *, cache: Path | None = None
) -> bool:
    """True when ``build_toxiproxy`` will answer from the cache, with no Go run."""
    return os.access(binary_path(version, cache=cache), os.X_OK)


def build_toxiproxy(
    version: str = DEFAULT_TOXIPROXY_VERSION,
    *,
    cache: Path | None = None,
    progress: Progress = _no_progress,
) -> Path:
    """Return the path of a toxiproxy server binary, building it with Go the first time."""
    target = binary_path(version, cache=cache)
    if toxiproxy_cached(version, cache=cache):
        return target
    return go_install(TOXIPROXY_PACKAGE, version, "server", target, progress)


class LocalToxiproxy:
    """One toxiproxy server on 127.0.0.1:``port`` (a free one by default), and its HTTP API."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 0,
        version: str = DEFAULT_TOXIPROXY_VERSION,
        startup_timeout: float = 20.0,
    ) -> None:
        self.port = port or free_port()
        self.version = version
        self.data_dir = data_dir
        self.log_file = data_dir / "toxiproxy.log"
        self.pid_file = data_dir / "toxiproxy.pid"
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Launch the built server and return once its API answers; ``build_toxiproxy`` first."""
        binary = binary_path(self.version)
        if not toxiproxy_cached(self.version):
            raise EnvironmentProblem(
                f"toxiproxy {self.version} is not built yet ({binary} is missing)",
                hint="call streamcoord.devtools.toxiproxy.build_toxiproxy() first",
            )
        check_port_free(self.port)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            self._process = subprocess.Popen(
                [str(binary), "-host", "127.0.0.1", "-port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(self._process.pid))
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self.stop()
                raise EnvironmentProblem(
                    f"toxiproxy exited during startup with code {self._process.returncode}",
                    hint=f"read {self.log_file}",
                )
            try:
                self._call("GET", "/version")
            except ToxiproxyError:
                time.sleep(0.1)
            else:
                return
        self.stop()
        raise EnvironmentProblem(
            f"toxiproxy did not answer within {self.startup_timeout:.0f}s",
            hint=f"read {self.log_file}",
        )

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the server (SIGTERM, SIGKILL after ``timeout``); False if it was not running."""
        if self._process is None:
            return False
        stop_service(self._process.pid, self._process, self.pid_file, timeout=timeout,
                     alive=lambda _: True)  # fmt: skip
        self._process = None
        return True

    # --- the HTTP API (https://github.com/Shopify/toxiproxy#http-api) ---

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else orjson.dumps(body)
        request = urllib.request.Request(  # noqa: S310 - our own http URL on loopback
            self.url + path, data=data, method=method,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=5.0) as response:  # noqa: S310
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise ToxiproxyError(
                f"toxiproxy {method} {path} answered {exc.code}: {detail}",
                hint=f"read {self.log_file}",
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ToxiproxyError(
                f"toxiproxy at {self.url} did not answer {method} {path}: {exc}",
                hint=f"is it running? read {self.log_file}",
            ) from exc
        return orjson.loads(payload) if payload else None

    def create_proxy(self, name: str, upstream: str, *, listen_port: int = 0) -> int:
        """A proxy from 127.0.0.1:``listen_port`` (a free one by default) to ``upstream``."""
        port = listen_port or free_port()
        self._call("POST", "/proxies", {
            "name": name, "listen": f"127.0.0.1:{port}", "upstream": upstream, "enabled": True,
        })  # fmt: skip
        return port

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Disable (close every connection, refuse new ones) or re-enable a proxy."""
        self._call("POST", f"/proxies/{name}", {"enabled": enabled})

    def add_toxic(
        self,
        proxy: str,
        toxic: str,
        kind: str,
        attributes: dict[str, int],
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> None:
        """Add toxic ``toxic`` of type ``kind`` (latency, timeout, reset_peer, ...) to ``proxy``."""
        self._call("POST", f"/proxies/{proxy}/toxics", {
            "name": toxic, "type": kind, "stream": stream, "toxicity": toxicity,
            "attributes": attributes,
        })  # fmt: skip

    def remove_toxic(self, proxy: str, toxic: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic}")

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("POST", "/reset")
