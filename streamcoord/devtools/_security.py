"""The ``scram-tls`` local broker: SASL_SSL with SCRAM-SHA-512, an authorizer, users and ACLs.

Per data directory (one "session" of the broker) it makes a CA and a server keystore, and a
password for each user: ``admin`` (super user: topics, ACLs), ``coordinator`` and ``client``
(an ordinary user: worker, emitter, ingest and reader roles). The passwords go to a file only
its owner can read; the storage format step gets them salted and hashed (SCRAM's own stored
form), so no password is ever on a command line. The controller listener stays PLAINTEXT on
127.0.0.1; its principal (``User:ANONYMOUS``) must be a super user for the broker to register.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from streamcoord.devtools._acls import (
    Acl,
    coordinator_acls,
    reader_acls,
    worker_acls,
)
from streamcoord.devtools._tls import ServerTls, make_server_tls
from streamcoord.errors import BrokerStartError
from streamcoord.kafka.settings import KafkaSettings

__all__ = [
    "ADMIN",
    "CLIENT",
    "COORDINATOR",
    "COORDINATOR_GROUP",
    "SCRAM_MECHANISM",
    "SECURITY_MODES",
    "WORKER_GROUP_PREFIX",
    "BrokerSecurity",
    "dev_acls",
    "prepare_security",
    "write_private",
]

SECURITY_MODES: Final = ("scram-tls",)
SCRAM_MECHANISM: Final = "SCRAM-SHA-512"
ADMIN, COORDINATOR, CLIENT = "admin", "coordinator", "client"
COORDINATOR_GROUP: Final = "streamcoord-coordinator"
WORKER_GROUP_PREFIX: Final = "streamcoord-worker"
_ITERATIONS: Final = 8192
_PASSWORDS_FILE = "passwords.toml"


@dataclass(frozen=True)
class BrokerSecurity:
    """The TLS material and the users' passwords of one secured data directory."""

    directory: Path
    tls: ServerTls
    passwords: dict[str, str]

    @property
    def password_file(self) -> Path:
        return self.directory / _PASSWORDS_FILE

    @property
    def ca_file(self) -> Path:
        return self.tls.ca_file

    def __repr__(self) -> str:  # the dataclass repr would print the passwords
        return f"BrokerSecurity(directory={self.directory!r}, users={sorted(self.passwords)})"

    def kafka_settings(self, bootstrap: str, user: str = ADMIN) -> KafkaSettings:
        """The client settings a user of this broker gives (the admin by default)."""
        return KafkaSettings(
            bootstrap_servers=bootstrap, security_protocol="SASL_SSL",
            sasl_mechanism=SCRAM_MECHANISM, sasl_plain_username=user,
            sasl_plain_password=self.passwords[user], ssl_cafile=self.ca_file,
        )  # fmt: skip

    def server_properties(self, port: int, controller_port: int) -> dict[str, str]:
        """What replaces the PLAINTEXT listener's settings in ``server.properties``."""
        admin = self.passwords[ADMIN]
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{ADMIN}" password="{admin}";'
        )
        return {
            "listeners": f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{port}",
            "inter.broker.listener.name": "SASL_SSL",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": SCRAM_MECHANISM,
            "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
            f"listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": jaas,
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.tls.keystore),
            "ssl.keystore.password": self.tls.keystore_password,
            "ssl.key.password": self.tls.keystore_password,
            # The broker is a TLS client of itself (transaction markers): it trusts the CA.
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
            "ssl.client.auth": "none",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{ADMIN};User:ANONYMOUS",
        }

    def scram_format_args(self) -> list[str]:
        """``--add-scram`` options for the storage tool, with salted passwords only."""
        args: list[str] = []
        for user, password in sorted(self.passwords.items()):
            salt = secrets.token_bytes(16)
            salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS)
            credential = (
                f"name={user},iterations={_ITERATIONS},"
                f'salt="{_b64(salt)}",saltedpassword="{_b64(salted)}"'
            )
            args += ["--add-scram", f"{SCRAM_MECHANISM}=[{credential}]"]
        return args

    def redact(self, text: str) -> str:
        """``text`` with every password (and the keystore's) replaced by ``***``."""
        for secret in (*self.passwords.values(), self.tls.keystore_password):
            text = text.replace(secret, "***")
        return text


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def dev_acls() -> list[Acl]:
    """The grants of the local broker: ``coordinator`` as a coordinator, ``client`` as the rest."""
    client = f"User:{CLIENT}"
    return [
        *coordinator_acls(f"User:{COORDINATOR}", COORDINATOR_GROUP),
        *worker_acls(client, WORKER_GROUP_PREFIX),  # includes the emitter's (and ingest's) grant
        *reader_acls(client),
    ]


def prepare_security(directory: Path, *, formatted: bool) -> BrokerSecurity:
    """The secrets of ``directory``: reused when there, else made (only for fresh storage)."""
    password_file = directory / _PASSWORDS_FILE
    keystore, ca_file = directory / "server.p12", directory / "ca.pem"
    if password_file.exists() and keystore.exists() and ca_file.exists():
        stored = tomllib.loads(password_file.read_text())
        tls = ServerTls(ca_file, keystore, str(stored.pop("keystore")))
        return BrokerSecurity(directory, tls, {str(k): str(v) for k, v in stored.items()})
    if formatted:
        # SCRAM users are written at format time; without their passwords nobody can log in.
        raise BrokerStartError(
            f"the broker storage next to {directory} was formatted without these users' passwords",
            hint="pass another --data-dir (or remove this one) to start a fresh secured broker",
        )
    tls = make_server_tls(directory)
    passwords = {user: secrets.token_urlsafe(24) for user in (ADMIN, COORDINATOR, CLIENT)}
    security = BrokerSecurity(directory, tls, passwords)
    write_private(password_file, _passwords_toml(passwords, tls.keystore_password))
    return security


def _passwords_toml(passwords: dict[str, str], keystore: str) -> str:
    lines = ["# SCRAM-SHA-512 passwords of the local broker's users (readable by you only)."]
    lines += [f'{user} = "{password}"' for user, password in passwords.items()]
    lines += ["# the broker's PKCS12 keystore (server.p12)", f'keystore = "{keystore}"']
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, created with mode 0600 (never readable by others)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
