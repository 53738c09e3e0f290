"""Why a secured broker refused a client, in words a user can act on.

aiokafka logs the real reason of a failed bootstrap (bad SASL credentials, an untrusted TLS
certificate) and then raises a generic "Unable to bootstrap". :func:`refusal` opens one
connection with the same settings to find the reason again. The message names the user and
the mechanism, never the password.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import AuthenticationFailedError, KafkaError, SaslAuthenticationFailed

from streamcoord.errors import ConfigError

__all__ = ["refusal"]

_PROBE_TIMEOUT_MS = 10_000


async def refusal(client_kwargs: Mapping[str, Any]) -> ConfigError | None:
    """A ``ConfigError`` when the first bootstrap server refuses the credentials or the TLS
    handshake of ``client_kwargs``; None when it does not (or cannot be reached at all)."""
    protocol = str(client_kwargs.get("security_protocol", "PLAINTEXT"))
    if protocol == "PLAINTEXT":
        return None
    address = _first_server(client_kwargs.get("bootstrap_servers", ""))
    host, _, port = address.rpartition(":")
    try:
        connection = await create_conn(
            host, int(port), client_id=str(client_kwargs.get("client_id", "streamcoord")),
            request_timeout_ms=_PROBE_TIMEOUT_MS, security_protocol=protocol,
            ssl_context=client_kwargs.get("ssl_context"),
            sasl_mechanism=client_kwargs.get("sasl_mechanism"),
            sasl_plain_username=client_kwargs.get("sasl_plain_username"),
            sasl_plain_password=client_kwargs.get("sasl_plain_password"),
        )  # fmt: skip
    except (SaslAuthenticationFailed, AuthenticationFailedError):
        user = client_kwargs.get("sasl_plain_username")
        return ConfigError(
            f"Kafka at {address} refused the credentials of user {user!r} "
            f"({client_kwargs.get('sasl_mechanism')} authentication failed)",
            hint="check sasl_plain_username and sasl_plain_password "
            "(STREAMCOORD_KAFKA_SASL_PLAIN_PASSWORD or the [kafka] table of the config file)",
        )
    except ssl.SSLCertVerificationError as error:
        return ConfigError(
            f"the TLS certificate of Kafka at {address} is not trusted: {error.verify_message}",
            hint="set ssl_cafile to the CA that signed the broker's certificate",
        )
    except (OSError, KafkaError, TimeoutError, ValueError):
        return None  # not a refusal: the caller's own error says what happened
    connection.close()
    return None


def _first_server(servers: object) -> str:
    if isinstance(servers, str):
        return servers.split(",")[0].strip()
    return str(next(iter(servers))) if isinstance(servers, list | tuple) and servers else ""
