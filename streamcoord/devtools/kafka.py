"""A real single-node Kafka broker (KRaft, combined broker and controller) from Apache's own jars.

The jars come from Maven Central through Maven, once, into a cache directory; later starts reuse
them with no network. The broker binds to 127.0.0.1 only and writes its output to a log file.
This is what the quickstart and the test suite run when no other broker is named.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from streamcoord.devtools._acls import create_acls
from streamcoord.devtools._jars import (
    DEFAULT_KAFKA_VERSION,
    SUPPORTED_KAFKA_VERSIONS,
    cache_root,
    jars_cached,
    major,
    render_pom,
    require_tool,
    resolve_jars,
)
from streamcoord.devtools._process import stop_service
from streamcoord.devtools._security import (
    SECURITY_MODES,
    BrokerSecurity,
    dev_acls,
    prepare_security,
    write_private,
)
from streamcoord.errors import BrokerStartError, EnvironmentProblem

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "SECURITY_MODES",
    "SUPPORTED_KAFKA_VERSIONS",
    "BrokerSecurity",
    "BrokerSettings",
    "LocalKafka",
    "cache_root",
    "check_port_free",
    "free_port",
    "jars_cached",
    "render_pom",
    "resolve_jars",
    "running_brokers",
    "server_properties",
]

_LOG4J1 = """log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={log}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
"""

_LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
"""


#: What Kafka's own ``kafka-run-class.sh`` passes (``KAFKA_JVM_PERFORMANCE_OPTS``): above all a
#: 20 ms pause goal for G1 instead of its 200 ms default, which otherwise shows up as 30-60 ms
#: stalls of every client every few seconds.
KAFKA_JVM_PERFORMANCE_OPTS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_port_free(port: int) -> None:
    """Raise ``EnvironmentProblem`` when something already listens on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise EnvironmentProblem(
                f"port {port} on 127.0.0.1 is already in use",
                hint="stop what listens there (`streamcoord dev kafka --stop`) or pass --port",
            ) from exc


def _port_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class BrokerSettings:
    """Everything that decides how one local broker runs."""

    port: int = 9092
    controller_port: int = 0  # 0: pick a free one at start
    data_dir: Path | None = None
    version: str = DEFAULT_KAFKA_VERSION
    heap: str = "512m"
    startup_timeout: float = 90.0
    #: (port, advertised port) of a second listener, PROXIED, for clients that must reach the
    #: broker through a proxy on 127.0.0.1 (the chaos suite's toxiproxy): the broker advertises
    #: the proxy's port there, so every connection after the bootstrap goes through it too.
    proxied_listener: tuple[int, int] | None = None
    security: str | None = None  # None: PLAINTEXT; "scram-tls": SASL_SSL, SCRAM-SHA-512, ACLs

    def __post_init__(self) -> None:
        if self.security is not None and self.security not in SECURITY_MODES:
            raise EnvironmentProblem(
                f"unknown broker security {self.security!r}",
                hint=f"use one of {', '.join(SECURITY_MODES)}, or none for PLAINTEXT",
            )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def resolved_data_dir(self) -> Path:
        if self.data_dir is not None:
            return self.data_dir
        mode = f"{self.security}-" if self.security else ""
        return cache_root() / "kafka-data" / f"{mode}{self.version}-{self.port}"


def server_properties(
    settings: BrokerSettings,
    controller_port: int,
    logs: Path,
    security: BrokerSecurity | None = None,
) -> str:
    """The broker's ``server.properties``: one combined node on 127.0.0.1, sized for one machine.

    With ``security`` the client listener is SASL_SSL (SCRAM) and an authorizer checks ACLs.
    """
    port = settings.port
    listeners = f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"
    advertised = f"PLAINTEXT://127.0.0.1:{port}"
    protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    if settings.proxied_listener is not None:
        proxied, via = settings.proxied_listener
        listeners += f",PROXIED://127.0.0.1:{proxied}"
        advertised += f",PROXIED://127.0.0.1:{via}"
        protocols += ",PROXIED:PLAINTEXT"
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": listeners,
        "advertised.listeners": advertised,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": protocols,
        "log.dirs": str(logs),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        # Compaction of the state changelog should be visible within a demo, not after a day.
        "log.cleaner.backoff.ms": "5000",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
    }
    if security is not None:
        props.update(security.server_properties(port, controller_port))
    return "".join(f"{key}={value}\n" for key, value in props.items())


class LocalKafka:
    """One broker process: ``start()`` returns once it answers metadata requests."""

    def __init__(self, settings: BrokerSettings) -> None:
        self.settings = settings
        self.data_dir = settings.resolved_data_dir()
        self.log_file = self.data_dir / "broker.log"
        self.pid_file = self.data_dir / "broker.pid"
        self._process: subprocess.Popen[bytes] | None = None
        self.security: BrokerSecurity | None = None

    @property
    def bootstrap(self) -> str:
        return self.settings.bootstrap

    @property
    def security_dir(self) -> Path:
        return self.data_dir / "security"

    def load_security(self) -> BrokerSecurity | None:
        """A secured broker's secrets (made on first start, reused after); None if PLAINTEXT."""
        if self.settings.security is not None and self.security is None:
            formatted = (self.data_dir / "logs" / "meta.properties").exists()
            self.security = prepare_security(self.security_dir, formatted=formatted)
        return self.security

    def admin_kwargs(self) -> dict[str, Any]:
        """aiokafka keyword arguments of a super user (with no security, anyone)."""
        security = self.load_security()
        if security is None:
            return {"bootstrap_servers": self.bootstrap}
        return security.kafka_settings(self.bootstrap).client_kwargs()

    def _java_command(self, libs: Path, main: str, *args: str) -> list[str]:
        java = require_tool("java", "run the Kafka broker")
        config = self.data_dir / "log4j.properties"
        template = _LOG4J1 if major(self.settings.version) == "3" else _LOG4J2
        config.write_text(template.format(log=self.log_file))
        log_flag = (
            f"-Dlog4j.configuration=file:{config}"
            if major(self.settings.version) == "3"
            else f"-Dlog4j2.configurationFile={config}"
        )
        heap = self.settings.heap
        return [
            java, f"-Xms{heap}", f"-Xmx{heap}", *KAFKA_JVM_PERFORMANCE_OPTS,
            log_flag, "-cp", f"{libs}/*", main, *args,
        ]  # fmt: skip

    def running_pid(self) -> int | None:
        """The pid of a broker started here earlier and still alive, if any."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _is_broker_process(pid) else None

    def start(self) -> None:
        """Format storage if needed, launch the broker and return once it answers metadata.

        The broker runs in its own session, so it outlives this process unless ``stop()`` is
        called; an interrupt (Ctrl-C) while waiting stops it before propagating.
        """
        settings = self.settings
        running = self.running_pid()
        if running is not None:
            raise EnvironmentProblem(
                f"a broker from {self.data_dir} is already running (pid {running})",
                hint=f"use it, or stop it: `streamcoord dev kafka --stop --port {settings.port}`",
            )
        check_port_free(settings.port)
        if settings.proxied_listener is not None:
            check_port_free(settings.proxied_listener[0])
        libs = resolve_jars(settings.version)
        controller_port = settings.controller_port or self._reusable_controller_port()
        check_port_free(controller_port)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        security = self.load_security()
        properties = self.data_dir / "server.properties"
        # With security it holds the admin's password and the keystore's: owner only.
        write_private(
            properties,
            server_properties(settings, controller_port, self.data_dir / "logs", security),
        )
        self._format(libs, properties)
        with self.log_file.open("ab") as out:
            self._process = subprocess.Popen(
                self._java_command(libs, "kafka.Kafka", str(properties)),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(self._process.pid))
        try:
            self._wait_ready()
            if security is not None:
                _run_async(create_acls(self.admin_kwargs(), dev_acls()))
        except BaseException:
            self.stop()
            raise

    def _previous_properties(self, name: str) -> dict[str, str]:
        try:
            lines = (self.data_dir / name).read_text().splitlines()
        except OSError:
            return {}
        pairs = (line.split("=", 1) for line in lines if "=" in line and line[0] != "#")
        return {key.strip(): value.strip() for key, value in pairs}

    def _reusable_controller_port(self) -> int:
        """The controller port of an earlier run on this data directory if still free, else any."""
        voters = self._previous_properties("server.properties").get("controller.quorum.voters", "")
        previous = voters.rpartition(":")[2]
        if previous.isdigit():
            with contextlib.suppress(EnvironmentProblem):
                check_port_free(int(previous))
                return int(previous)
        return free_port()

    def _format(self, libs: Path, properties: Path) -> None:
        # Kafka 4 refuses to "re-format" with another cluster id even with --ignore-formatted.
        meta = self._previous_properties("logs/meta.properties")
        cluster_id = meta.get("cluster.id") or _new_cluster_id()
        scram = self.security.scram_format_args() if self.security else []
        command = self._java_command(
            libs, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
            "-c", str(properties), "--ignore-formatted", *scram,
        )  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            detail = result.stderr.strip()[-400:]
            if self.security is not None:
                detail = self.security.redact(detail)
            raise BrokerStartError(
                f"formatting Kafka storage in {self.data_dir} failed: {detail}",
                hint="remove the data directory or pass another --data-dir",
            )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.settings.startup_timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerStartError(
                    f"the Kafka broker exited with code {self._process.returncode}",
                    hint=f"read {self.log_file}",
                )
            if _port_answers(self.settings.port) and _metadata_answers(self.admin_kwargs()):
                return
            time.sleep(0.25)
        raise BrokerStartError(
            f"the Kafka broker did not answer within {self.settings.startup_timeout:.0f}s",
            hint=f"read {self.log_file}",
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker with SIGTERM (SIGKILL after ``timeout``); False if none was running."""
        pid = self._process.pid if self._process else self.running_pid()
        if pid is None:
            return False
        stop_service(pid, self._process, self.pid_file, timeout=timeout, alive=_pid_alive)
        self._process = None
        return True

    def wait(self) -> int:
        """Block until the broker process ends; its exit code."""
        assert self._process is not None
        return self._process.wait()


_T = TypeVar("_T")


def _new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def running_brokers(port: int) -> list[LocalKafka]:
    """Brokers still alive that were started for ``port`` under the default data directories."""
    candidates = sorted((cache_root() / "kafka-data").glob(f"*-{port}"))
    brokers = [LocalKafka(BrokerSettings(port=port, data_dir=path)) for path in candidates]
    return [broker for broker in brokers if broker.running_pid() is not None]


def _is_broker_process(pid: int) -> bool:
    """Whether ``pid`` is alive and, where /proc tells, really a Kafka broker (pids get reused)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return b"kafka.Kafka" in cmdline.read_bytes()
    except OSError:
        return not Path("/proc/self").exists()  # no procfs (macOS): trust the live pid


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _metadata_answers(client_kwargs: dict[str, Any]) -> bool:
    """True once the broker answers a metadata request (a short-lived admin client)."""
    from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(**client_kwargs, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.describe_cluster()
        except Exception:  # any failure means "not ready yet"
            return False
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        return True

    return _run_async(probe())


def _run_async(work: Coroutine[Any, Any, _T]) -> _T:
    """Run ``work`` to completion from synchronous code, even inside a running event loop."""
    # A thread of its own keeps it clear of any event loop the caller may be running.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()
