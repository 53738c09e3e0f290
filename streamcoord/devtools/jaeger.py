"""A real Jaeger v2 on one machine, built from the Go module proxy with the local Go toolchain.

No package ships Jaeger for Python users, so ``build_jaeger`` makes a small Go tools module in the
cache, adds Jaeger's ``cmd/jaeger`` as a tool (``go get -tool``) and ``go build``s it once into
``<cache>/jaeger/<version>/jaeger``; later starts reuse that binary with no network. The first
build takes about 15 minutes on 2 cores and 3 GB of Go module and build cache (Go's own
directories).

``LocalJaeger`` runs the binary with an explicit config file (``jaeger.yaml`` next to this module,
rendered per port set): every listener on 127.0.0.1, traces in memory, OTLP on 4317 (gRPC) and
4318 (HTTP), the query API on 16686, and a health check on 13133 (``/status``).
"""

from __future__ import annotations

import os
import shutil
import string
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from streamcoord.devtools._cache_lock import exclusive
from streamcoord.devtools._process import follow_command, stop_service
from streamcoord.devtools.kafka import cache_root, check_port_free
from streamcoord.errors import EnvironmentProblem

__all__ = [
    "DEFAULT_JAEGER_VERSION",
    "JAEGER_PACKAGE",
    "JaegerPorts",
    "JaegerSettings",
    "LocalJaeger",
    "binary_path",
    "build_jaeger",
    "jaeger_cached",
    "render_config",
    "require_go",
]

#: The Go module version of Jaeger to build: v1.76.0 is the same commit as Jaeger v2.13.0 (the
#: v2 line is released from the v1 module path, which has no /v2 suffix).
DEFAULT_JAEGER_VERSION = "v1.76.0"
JAEGER_PACKAGE = "github.com/jaegertracing/jaeger/cmd/jaeger"
_TOOLS_MODULE = "streamcoord.local/jaegertool"
_TEMPLATE = Path(__file__).with_name("jaeger.yaml")

Progress = Callable[[str], None]


def _no_progress(line: str) -> None:
    """Progress sink that drops every line."""


def _version_dir(version: str, cache: Path | None) -> Path:
    return (cache or cache_root()) / "jaeger" / version


def binary_path(version: str = DEFAULT_JAEGER_VERSION, *, cache: Path | None = None) -> Path:
    """Where the built Jaeger binary of ``version`` lives (whether or not it exists yet)."""
    return _version_dir(version, cache) / "jaeger"


def jaeger_cached(version: str = DEFAULT_JAEGER_VERSION, *, cache: Path | None = None) -> bool:
    """True when ``build_jaeger`` will answer from the cache, with no Go run."""
    return os.access(binary_path(version, cache=cache), os.X_OK)


def require_go() -> str:
    """The path of ``go``, or ``EnvironmentProblem`` saying how to get it."""
    go = shutil.which("go")
    if go is None:
        raise EnvironmentProblem(
            "`go` was not found on PATH; it is needed once to build Jaeger",
            hint="install Go 1.24 or newer (https://go.dev/doc/install) and run again",
        )
    return go


def build_jaeger(
    version: str = DEFAULT_JAEGER_VERSION,
    *,
    cache: Path | None = None,
    progress: Progress = _no_progress,
) -> Path:
    """Return the path of a Jaeger binary, building it with Go the first time.

    ``progress`` receives each line Go prints (modules downloaded, packages compiled); the full
    output also goes to ``build.log`` next to the binary.
    """
    target = binary_path(version, cache=cache)
    if jaeger_cached(version, cache=cache):
        return target
    with exclusive(target):
        if jaeger_cached(version, cache=cache):  # another session built it while we waited
            return target
        return _build(target, version, progress)


def _build(target: Path, version: str, progress: Progress) -> Path:
    go = require_go()
    module = target.parent / "module"
    module.mkdir(parents=True, exist_ok=True)
    log = target.parent / "build.log"
    partial = target.with_name(f"jaeger.partial-{os.getpid()}")
    steps = [
        [go, "get", "-tool", f"{JAEGER_PACKAGE}@{version}"],
        [go, "build", "-v", "-o", str(partial), JAEGER_PACKAGE],
    ]
    if not (module / "go.mod").exists():
        steps.insert(0, [go, "mod", "init", _TOOLS_MODULE])
    with log.open("w") as out:
        for step in steps:
            _run_go_step(step, module, out, progress)
    # A rename is atomic: an interrupted build never leaves a half-written binary behind.
    partial.replace(target)
    return target


def _run_go_step(command: list[str], module: Path, out: TextIO, progress: Progress) -> None:
    code, tail = follow_command(command, cwd=module, out=out, progress=progress)
    if code != 0:
        shown = "\n".join(tail)
        raise EnvironmentProblem(
            f"`{' '.join(command[1:3])}` failed while building Jaeger:\n{shown}",
            hint=f"read {module.parent / 'build.log'}; check that Go reaches its module proxy",
        )


@dataclass(frozen=True)
class JaegerPorts:
    """The TCP ports Jaeger listens on, all on 127.0.0.1."""

    otlp_grpc: int = 4317
    otlp_http: int = 4318
    query_http: int = 16686
    query_grpc: int = 16685
    health: int = 13133

    def all(self) -> tuple[int, ...]:
        """Every port, in declaration order."""
        return (self.otlp_grpc, self.otlp_http, self.query_http, self.query_grpc, self.health)


@dataclass(frozen=True)
class JaegerSettings:
    """Everything that decides how one local Jaeger runs."""

    ports: JaegerPorts = field(default_factory=JaegerPorts)
    version: str = DEFAULT_JAEGER_VERSION
    data_dir: Path | None = None
    max_traces: int = 100_000
    startup_timeout: float = 60.0

    @property
    def otlp_grpc_endpoint(self) -> str:
        """What ``OTEL_EXPORTER_OTLP_ENDPOINT`` should be with protocol ``grpc``."""
        return f"http://127.0.0.1:{self.ports.otlp_grpc}"

    @property
    def otlp_http_endpoint(self) -> str:
        """What ``OTEL_EXPORTER_OTLP_ENDPOINT`` should be with protocol ``http/protobuf``."""
        return f"http://127.0.0.1:{self.ports.otlp_http}"

    @property
    def query_url(self) -> str:
        """Base URL of the query API (``/api/v3/traces/<trace_id>``)."""
        return f"http://127.0.0.1:{self.ports.query_http}"

    @property
    def health_url(self) -> str:
        """The health check: 200 once every pipeline runs."""
        return f"http://127.0.0.1:{self.ports.health}/status"

    def resolved_data_dir(self) -> Path:
        """Config, log and pid file live here: per query port in the cache unless given."""
        default = cache_root() / "jaeger-run" / str(self.ports.query_http)
        return self.data_dir or default


def render_config(settings: JaegerSettings) -> str:
    """Jaeger's YAML config for ``settings`` (from the ``jaeger.yaml`` template)."""
    ports = settings.ports
    return string.Template(_TEMPLATE.read_text()).substitute(
        otlp_grpc=ports.otlp_grpc,
        otlp_http=ports.otlp_http,
        query_http=ports.query_http,
        query_grpc=ports.query_grpc,
        health=ports.health,
        max_traces=settings.max_traces,
    )


class LocalJaeger:
    """One Jaeger process: ``start()`` returns once its health check says it is ready."""

    def __init__(self, settings: JaegerSettings | None = None) -> None:
        self.settings = settings or JaegerSettings()
        self.data_dir = self.settings.resolved_data_dir()
        self.config_file = self.data_dir / "jaeger.yaml"
        self.log_file = self.data_dir / "jaeger.log"
        self.pid_file = self.data_dir / "jaeger.pid"
        self._process: subprocess.Popen[bytes] | None = None

    def running_pid(self) -> int | None:
        """The pid of a Jaeger started here earlier and still alive, if any."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _is_jaeger_process(pid) else None

    def start(self) -> None:
        """Write the config, launch the cached binary and wait until it is healthy.

        The binary must be built already (``build_jaeger``). Jaeger runs in its own session, so
        it outlives this process unless ``stop()`` is called; a failure while waiting stops it.
        """
        running = self.running_pid()
        if running is not None:
            raise EnvironmentProblem(
                f"a Jaeger from {self.data_dir} is already running (pid {running})",
                hint="use it, or stop it: `streamcoord dev jaeger --stop`",
            )
        for port in self.settings.ports.all():
            check_port_free(port)
        binary = binary_path(self.settings.version)
        if not jaeger_cached(self.settings.version):
            raise EnvironmentProblem(
                f"Jaeger {self.settings.version} is not built yet ({binary} is missing)",
                hint="`streamcoord dev jaeger` builds it first",
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(render_config(self.settings))
        with self.log_file.open("ab") as out:
            self._process = subprocess.Popen(
                [str(binary), "--config", f"file:{self.config_file}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(self._process.pid))
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.settings.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EnvironmentProblem(
                    f"Jaeger exited during startup with code {self._process.returncode}",
                    hint=f"read {self.log_file}",
                )
            if _healthy(self.settings.health_url):
                return
            time.sleep(0.2)
        raise EnvironmentProblem(
            f"Jaeger was not healthy within {self.settings.startup_timeout:.0f}s",
            hint=f"read {self.log_file}",
        )

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop Jaeger with SIGTERM (SIGKILL after ``timeout``); False if none was running."""
        pid = self._process.pid if self._process else self.running_pid()
        if pid is None:
            return False
        stop_service(pid, self._process, self.pid_file, timeout=timeout, alive=_is_jaeger_process)
        self._process = None
        return True

    def wait(self) -> int:
        """Block until the Jaeger process ends; its exit code."""
        assert self._process is not None
        return self._process.wait()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 - our own http URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _is_jaeger_process(pid: int) -> bool:
    """Whether ``pid`` is alive and, where /proc tells, really our Jaeger (pids get reused)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        return b"jaeger" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return not Path("/proc/self").exists()  # no procfs (macOS): trust the live pid
