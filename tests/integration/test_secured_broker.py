"""streamcoord against a secured broker: SASL_SSL with SCRAM-SHA-512, a session CA, and ACLs.

One ``streamcoord dev kafka --security scram-tls`` broker (``LocalKafka`` with ``security``)
serves every test here; the shared plain broker is not used. Users connect with the settings
a user gives (a ``[kafka]`` table in the file named by ``--config``): the ``admin`` applies
topics, the ``coordinator`` runs the coordinator, the ordinary ``client`` runs a worker,
emits, ingests over HTTP and reads ``status``/``runs`` — each only as far as its ACLs allow.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError

from streamcoord.devtools.kafka import (
    DEFAULT_KAFKA_VERSION,
    BrokerSecurity,
    BrokerSettings,
    LocalKafka,
    free_port,
)
from streamcoord.emit import Emitter
from streamcoord.events.codec import decode
from streamcoord.events.models import RunRecord
from streamcoord.ingest import create_app
from streamcoord.kafka.admin import load_topics
from streamcoord.kafka.records import read_topic
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.runtime import Coordinator, CoordinatorSettings, TopicNames
from streamcoord.worker import StageContext, Worker, WorkerSettings
from tests.integration.coordination import catalog_of
from tests.kafka_fixtures import VERSION_ENV

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

ROOT = Path(__file__).parents[2]
SPEC = """\
pipelines:
  - name: secured
    run_key: event.data.day
    triggers:
      - kind: event
        type: shop.orders.landed
    stages:
      - name: load
"""
WRONG_PASSWORD = "not-the-password-0123456789"


@dataclass(frozen=True)
class Secured:
    """The running secured broker and one settings file per user."""

    broker: LocalKafka
    security: BrokerSecurity
    configs: dict[str, Path]
    logs: list[str]

    def settings(self, user: str) -> KafkaSettings:
        return KafkaSettings.load(self.configs[user])

    @property
    def passwords(self) -> list[str]:
        return [*self.security.passwords.values(), self.security.tls.keystore_password]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMCOORD_KAFKA_")}
        env.pop("STREAMCOORD_CONFIG", None)
        return subprocess.run(
            [sys.executable, "-m", "streamcoord.cli.main", *args],
            capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        )  # fmt: skip


def _user_config(path: Path, bootstrap: str, ca: Path, user: str, password: str) -> Path:
    """The file a user writes: the documented settings, nothing test-specific."""
    path.write_text(
        "[kafka]\n"
        f'bootstrap_servers = "{bootstrap}"\n'
        'security_protocol = "SASL_SSL"\n'
        'sasl_mechanism = "SCRAM-SHA-512"\n'
        f'sasl_plain_username = "{user}"\n'
        f'sasl_plain_password = "{password}"\n'
        f'ssl_cafile = "{ca}"\n'
    )
    path.chmod(0o600)
    return path


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(self.format(record))


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    if shutil.which("keytool") is None:  # the certificates are made with the JDK's keytool
        pytest.skip("keytool (from the JDK) is not on PATH: cannot make the broker's certificates")
    workdir = tmp_path_factory.mktemp("secured")
    version = os.environ.get(VERSION_ENV) or DEFAULT_KAFKA_VERSION
    broker = LocalKafka(
        BrokerSettings(port=free_port(), data_dir=workdir / "kafka", version=version,
                       security="scram-tls", startup_timeout=180)
    )  # fmt: skip
    broker.start()
    logs: list[str] = []
    handler = _Collect(logs)
    logging.getLogger().addHandler(handler)
    previous_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        security = broker.load_security()
        assert security is not None
        configs = {
            user: _user_config(workdir / f"{user}.toml", broker.bootstrap, security.ca_file,
                               user, password)
            for user, password in security.passwords.items()
        }  # fmt: skip
        configs["wrong"] = _user_config(
            workdir / "wrong.toml", broker.bootstrap, security.ca_file, "client", WRONG_PASSWORD
        )
        yield Secured(broker, security, configs, logs)
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(previous_level)
        broker.stop()


@pytest.fixture(scope="module")
def topics(secured: Secured, tmp_path_factory: pytest.TempPathFactory) -> TopicNames:
    """The declared topics, applied by the admin with ``streamcoord topics apply``."""
    declared = [
        {**t.model_dump(mode="json", exclude={"description"}), "partitions": 2}
        for t in load_topics().topics
    ]
    topics_file = tmp_path_factory.mktemp("topics") / "topics.yaml"
    topics_file.write_bytes(orjson.dumps({"topics": declared}))  # JSON is YAML
    applied = secured.cli("topics", "apply", "-f", str(topics_file),
                          "--config", str(secured.configs["admin"]))  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    return TopicNames()


@pytest.fixture(scope="module")
async def pipeline(secured: Secured, topics: TopicNames) -> AsyncIterator[None]:
    """A coordinator (user ``coordinator``) and a worker (user ``client``) in this process."""
    coordinator = Coordinator(
        catalog_of(SPEC),
        CoordinatorSettings(group_id="streamcoord-coordinator", poll_timeout_ms=50),
        secured.settings("coordinator").client_kwargs(),
    )
    worker = Worker(
        WorkerSettings(group_id="streamcoord-worker-secured", heartbeat_interval_s=30.0),
        secured.settings("client"),
    )

    @worker.stage("secured.load")
    async def load(ctx: StageContext) -> dict[str, object]:
        return {"day": ctx.params.get("day")}

    stop = asyncio.Event()
    tasks = [asyncio.create_task(coordinator.run(stop)), asyncio.create_task(worker.run(stop))]
    try:
        async with asyncio.timeout(120):
            await worker.ready.wait()
        yield
    finally:
        stop.set()
        # Both must have stopped (and closed their clients) before the broker goes away: wait
        # for each, whatever the other did.
        done, pending = await asyncio.wait(tasks, timeout=90)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert not pending, "the coordinator or the worker did not stop within 90 s"
        for task in done:
            task.result()  # a failure of either is the test's failure


async def _runs_succeeded(settings: KafkaSettings, run_keys: set[str]) -> None:
    """Poll the runs topic (as ``settings``' user) until every run key has succeeded."""
    async with asyncio.timeout(120):
        while True:
            contents = await read_topic(settings.client_kwargs(), TopicNames().runs)
            latest = {}
            for stored in contents.records:
                record = decode(stored.value, stored.headers)
                if isinstance(record, RunRecord):
                    latest[record.data.run_key] = record.data.status
            if all(latest.get(key) == "succeeded" for key in run_keys):
                return
            await asyncio.sleep(0.5)  # a compacted topic offers nothing to await but new reads


@pytest.fixture
async def ingest_url(secured: Secured, topics: TopicNames) -> AsyncIterator[str]:
    """``streamcoord ingest``'s app on 127.0.0.1, emitting as the ``client`` user."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    async with Emitter(secured.settings("client")) as emitter:
        server = uvicorn.Server(
            uvicorn.Config(create_app(emitter), log_level="warning", lifespan="off")
        )
        task = asyncio.create_task(server.serve(sockets=[sock]))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        server.should_exit = True
        await task


async def test_emit_and_ingest_start_runs_the_coordinator_and_a_worker_finish(
    secured: Secured, pipeline: None, ingest_url: str
) -> None:
    emitted = await asyncio.to_thread(
        secured.cli, "emit", "shop.orders.landed", "--source", "shop/etl",
        "--data", '{"day": "2024-03-01"}', "--config", str(secured.configs["client"]),
    )  # fmt: skip
    assert emitted.returncode == 0, emitted.stderr
    async with httpx.AsyncClient(base_url=ingest_url) as http:
        response = await http.post(
            "/events",
            content=orjson.dumps({"specversion": "1.0", "id": "ingest-1", "source": "shop/etl",
                                  "type": "shop.orders.landed", "data": {"day": "2024-03-02"}}),
            headers={"content-type": "application/cloudevents+json"},
        )  # fmt: skip
    assert response.status_code == 202, response.text

    await _runs_succeeded(secured.settings("client"), {"2024-03-01", "2024-03-02"})

    runs = await asyncio.to_thread(
        secured.cli, "runs", "--json", "--config", str(secured.configs["client"])
    )
    assert runs.returncode == 0, runs.stderr
    listed = [orjson.loads(line) for line in runs.stdout.splitlines() if line.strip()]
    assert {(r["run_key"], r["status"]) for r in listed} >= {
        ("2024-03-01", "succeeded"), ("2024-03-02", "succeeded"),
    }  # fmt: skip
    status = await asyncio.to_thread(
        secured.cli, "status", "--json", "--config", str(secured.configs["client"])
    )
    assert status.returncode == 0, status.stderr
    for output in (emitted, runs, status):
        assert not any(p in output.stdout + output.stderr for p in secured.passwords)
    assert not any(p in line for line in secured.logs for p in secured.passwords)


@pytest.mark.parametrize("topic", ["state", "internal"])
async def test_the_client_user_may_not_write_the_coordinators_topics(
    secured: Secured, topics: TopicNames, topic: str
) -> None:
    """An ordinary client (emitters, ingest, workers) cannot forge a coordinator's messages or
    state: the broker's authorizer refuses it the internal and the state topic."""
    producer = AIOKafkaProducer(
        **secured.settings("client").client_kwargs(), acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(getattr(topics, topic), b"forged", key=b"0")
    finally:
        await producer.stop()


@pytest.mark.parametrize(
    "command",
    [
        ("status",),
        ("emit", "shop.orders.landed", "--source", "shop/etl", "--data", "{}"),
        ("topics", "apply"),
    ],
    ids=["status", "emit", "topics-apply"],
)
def test_a_wrong_password_is_one_clear_error_that_shows_no_password(
    secured: Secured, topics: TopicNames, command: tuple[str, ...]
) -> None:
    result = secured.cli(*command, "--config", str(secured.configs["wrong"]))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "refused the credentials of user 'client'" in result.stderr
    assert "SCRAM-SHA-512" in result.stderr
    assert "Traceback" not in result.stderr
    for secret in (WRONG_PASSWORD, *secured.passwords):
        assert secret not in result.stdout + result.stderr


def test_dev_kafka_prints_client_settings_but_no_password(secured: Secured) -> None:
    settings = secured.broker.settings
    result = secured.cli(
        "dev", "kafka", "--security", "scram-tls", "--detach", "--port", str(settings.port),
        "--data-dir", str(settings.data_dir), "--kafka-version", settings.version,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    security = secured.security
    for expected in (secured.broker.bootstrap, "SASL_SSL", "SCRAM-SHA-512",
                     str(security.ca_file), str(security.password_file)):  # fmt: skip
        assert expected in out
    helped = secured.cli("dev", "kafka", "--help")
    for output in (out, result.stderr, helped.stdout):
        assert not any(p in output for p in secured.passwords)
    assert stat.S_IMODE(secured.security.password_file.stat().st_mode) == 0o600
    broker_log = secured.broker.log_file.read_text(errors="replace")
    assert not any(p in broker_log for p in secured.passwords)


def test_settings_never_show_the_password(secured: Secured) -> None:
    settings = secured.settings("client")
    password = secured.security.passwords["client"]
    assert password not in repr(settings)
    assert password not in str(settings)
    assert password not in repr(secured.security)
