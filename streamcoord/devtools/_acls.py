"""The Kafka ACLs each streamcoord role needs, and creating them through the admin protocol.

deploy/README.md gives the same grants as ``kafka-acls`` commands and Strimzi ``KafkaUser``
resources; the local secured broker creates them for real, so the tests run under them.
aiokafka's admin client has no ``create_acls``, but its protocol module has the CreateAcls
request (v1, which Kafka 3.x and 4.x both accept); :func:`create_acls` sends it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.admin import CreateAclsRequest

from streamcoord.errors import BrokerStartError
from streamcoord.events.topology import read_by, written_by

__all__ = [
    "Acl",
    "Operation",
    "Pattern",
    "Resource",
    "coordinator_acls",
    "create_acls",
    "emitter_acls",
    "reader_acls",
    "worker_acls",
]


class Resource(IntEnum):
    """Kafka's ResourceType codes."""

    TOPIC = 2
    GROUP = 3
    TRANSACTIONAL_ID = 5


class Pattern(IntEnum):
    """Kafka's PatternType codes."""

    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    """Kafka's AclOperation codes (WRITE implies DESCRIBE, and IDEMPOTENT_WRITE since 3.0)."""

    READ = 3
    WRITE = 4


_ALLOW = 3
_ANY_HOST = "*"


@dataclass(frozen=True)
class Acl:
    """One ALLOW grant: ``operation`` on ``resource`` ``name`` for ``principal``."""

    principal: str
    resource: Resource
    name: str
    operation: Operation
    pattern: Pattern = Pattern.LITERAL


def _grants(
    principal: str, resource: Resource, names: Iterable[str], operation: Operation,
    pattern: Pattern = Pattern.LITERAL,
) -> list[Acl]:  # fmt: skip
    return [Acl(principal, resource, name, operation, pattern) for name in names]


def coordinator_acls(principal: str, group: str, prefix: str = "") -> list[Acl]:
    """Read events, the internal topic, its state and the spec versions; write every output
    (the internal topic only coordinators may write, never the events topic); its group;
    transactional ids ``group.*``."""
    # topic names as declared (streamcoord.events.topology); --topic-prefix goes in front
    outputs, inputs = written_by("coordinator"), read_by("coordinator")
    return [
        *_grants(principal, Resource.TOPIC, (prefix + t for t in inputs), Operation.READ),
        *_grants(principal, Resource.TOPIC, (prefix + t for t in outputs), Operation.WRITE),
        Acl(principal, Resource.GROUP, group, Operation.READ),
        # One transactional producer per input partition, named "<group>.<topic>.<partition>".
        Acl(principal, Resource.TRANSACTIONAL_ID, f"{group}.", Operation.WRITE, Pattern.PREFIXED),
    ]


def worker_acls(principal: str, group_prefix: str, prefix: str = "") -> list[Acl]:
    """Read the executor topics (in groups named ``group_prefix*``); report on the events topic."""
    return [
        *_grants(principal, Resource.TOPIC,
                 (prefix + t for t in read_by("worker")), Operation.READ),
        Acl(principal, Resource.GROUP, group_prefix, Operation.READ, Pattern.PREFIXED),
        *emitter_acls(principal, prefix),
    ]  # fmt: skip


def emitter_acls(principal: str, prefix: str = "") -> list[Acl]:
    """Emitters and the HTTP ingest endpoint write the events topic, nothing else."""
    return _grants(
        principal, Resource.TOPIC, (prefix + t for t in written_by("emitter")), Operation.WRITE
    )


def reader_acls(principal: str, prefix: str = "") -> list[Acl]:
    """``streamcoord status``/``runs`` read the run and decision records (no group)."""
    return _grants(
        principal, Resource.TOPIC, (prefix + t for t in read_by("reader")), Operation.READ
    )


async def create_acls(client_kwargs: dict[str, Any], acls: Sequence[Acl]) -> None:
    """Create ``acls`` as the principal of ``client_kwargs`` (a super user); idempotent."""
    client = AIOKafkaClient(**client_kwargs, request_timeout_ms=10_000)
    await client.bootstrap()
    try:
        node = client.get_random_node()
        for acl in acls:
            request = CreateAclsRequest(
                acl.resource, acl.name, acl.pattern, acl.principal, _ANY_HOST,
                acl.operation, _ALLOW,
            )  # fmt: skip
            response = await client.send(node, request)
            for code, message in response.creation_responses:
                if code != 0:
                    raise BrokerStartError(
                        f"creating the ACL {acl} failed with error {code}: {message}",
                        hint="read the broker log",
                    )
    finally:
        await client.close()
