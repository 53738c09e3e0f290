"""The scram-tls broker's configuration without a broker: properties, SCRAM args, ACLs."""

from __future__ import annotations

import base64
import hashlib
import re
import stat
from pathlib import Path

import pytest

from streamcoord.cli.dev import Security
from streamcoord.devtools._acls import Operation, Pattern, Resource
from streamcoord.devtools._security import SECURITY_MODES, BrokerSecurity, dev_acls, write_private
from streamcoord.devtools._tls import ServerTls
from streamcoord.devtools.kafka import BrokerSettings, server_properties
from streamcoord.errors import EnvironmentProblem
from streamcoord.events import topology
from streamcoord.kafka.refusal import refusal

PASSWORDS = {"admin": "adm-secret-1", "coordinator": "coo-secret-2", "client": "cli-secret-3"}


@pytest.fixture
def security(tmp_path: Path) -> BrokerSecurity:
    tls = ServerTls(tmp_path / "ca.pem", tmp_path / "server.p12", "store-secret-4")
    return BrokerSecurity(tmp_path, tls, dict(PASSWORDS))


def test_secured_properties_listen_sasl_ssl_with_an_authorizer(security: BrokerSecurity) -> None:
    text = server_properties(BrokerSettings(port=9093), 9999, Path("/logs"), security)
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props["listeners"] == "SASL_SSL://127.0.0.1:9093,CONTROLLER://127.0.0.1:9999"
    assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert props["super.users"] == "User:admin;User:ANONYMOUS"
    assert "cli-secret-3" not in text  # only the admin's password, for the broker's own logins


def test_scram_arguments_carry_salted_passwords_only(security: BrokerSecurity) -> None:
    args = security.scram_format_args()
    joined = " ".join(args)
    assert not any(password in joined for password in PASSWORDS.values())
    values = args[1::2]
    assert args[0::2] == ["--add-scram"] * 3
    match = re.fullmatch(
        r'SCRAM-SHA-512=\[name=client,iterations=(\d+),salt="(.+)",saltedpassword="(.+)"\]',
        values[1],  # sorted: admin, client, coordinator
    )
    assert match is not None
    salted = hashlib.pbkdf2_hmac(
        "sha512", b"cli-secret-3", base64.b64decode(match[2]), int(match[1])
    )
    assert base64.b64decode(match[3]) == salted


def test_repr_and_redact_hide_every_secret(security: BrokerSecurity) -> None:
    assert not any(p in repr(security) for p in PASSWORDS.values())
    text = "x adm-secret-1 y store-secret-4"
    assert security.redact(text) == "x *** y ***"


def test_dev_acls_keep_the_client_off_the_coordinators_topics() -> None:
    acls = dev_acls()
    client = {(a.resource, a.name, a.operation) for a in acls if a.principal == "User:client"}
    assert (Resource.TOPIC, topology.EVENTS, Operation.WRITE) in client
    assert (Resource.TOPIC, topology.RUNS, Operation.READ) in client
    assert not any(name in {topology.STATE, topology.INTERNAL} for _, name, _ in client)
    coordinator = [a for a in acls if a.principal == "User:coordinator"]
    writes = {a.name for a in coordinator if a.operation == Operation.WRITE}
    assert topology.INTERNAL in writes
    assert topology.EVENTS not in writes  # it only reads what others emit
    assert any(
        a.resource == Resource.TRANSACTIONAL_ID and a.pattern == Pattern.PREFIXED
        and a.name == "streamcoord-coordinator." for a in coordinator
    )  # fmt: skip


def test_private_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "passwords.toml"
    write_private(path, "a = 1\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_cli_choices_are_the_security_modes() -> None:
    assert tuple(mode.value for mode in Security) == SECURITY_MODES
    with pytest.raises(EnvironmentProblem, match="unknown broker security"):
        BrokerSettings(security="kerberos")


async def test_plaintext_is_never_a_refusal() -> None:
    assert await refusal({"bootstrap_servers": "127.0.0.1:1"}) is None
