"""Certificates for a local TLS broker, made with Java's ``keytool``.

keytool ships with every JRE that can run the broker, so it is always there when the broker is;
it cannot write a private key as PEM, so the broker's key stays in a PKCS12 keystore and only
the CA certificate (what clients need) is written as PEM. A session's CA signs one server
certificate valid for 127.0.0.1 and localhost; the CA's own key is deleted once it has signed.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from streamcoord.devtools._jars import require_tool
from streamcoord.errors import BrokerStartError

__all__ = ["ServerTls", "make_server_tls"]

_VALIDITY_DAYS = "30"


@dataclass(frozen=True)
class ServerTls:
    """What the broker and its clients need: a CA file, a keystore and its password."""

    ca_file: Path
    keystore: Path
    keystore_password: str


def make_server_tls(directory: Path) -> ServerTls:
    """A CA (``ca.pem``) and a server keystore (``server.p12``) in ``directory``."""
    keytool = require_tool("keytool", "make the TLS certificates of the local broker")
    directory.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    ca_store, server_store = directory / "ca.p12", directory / "server.p12"
    ca_pem, csr, signed = directory / "ca.pem", directory / "server.csr", directory / "server.pem"
    for stale in (ca_store, server_store, ca_pem, csr, signed):
        stale.unlink(missing_ok=True)
    ca = ("-keystore", str(ca_store), "-storetype", "PKCS12")
    server = ("-keystore", str(server_store), "-storetype", "PKCS12")
    key = ("-keyalg", "EC", "-groupname", "secp256r1", "-validity", _VALIDITY_DAYS)
    steps = [
        ("-genkeypair", "-alias", "ca", "-dname", "CN=streamcoord dev CA", *key,
         "-ext", "bc:c", *ca),
        ("-exportcert", "-rfc", "-alias", "ca", "-file", str(ca_pem), *ca),
        ("-genkeypair", "-alias", "server", "-dname", "CN=localhost", *key, *server),
        ("-certreq", "-alias", "server", "-file", str(csr), *server),
        ("-gencert", "-rfc", "-alias", "ca", "-infile", str(csr), "-outfile", str(signed),
         "-validity", _VALIDITY_DAYS, "-ext", "san=ip:127.0.0.1,dns:localhost",
         "-ext", "eku=serverAuth", *ca),
        ("-importcert", "-noprompt", "-alias", "ca", "-file", str(ca_pem), *server),
        ("-importcert", "-noprompt", "-alias", "server", "-file", str(signed), *server),
    ]  # fmt: skip
    try:
        for step in steps:
            _keytool(keytool, *step, "-storepass", password)
    finally:
        for temporary in (ca_store, csr, signed):
            temporary.unlink(missing_ok=True)
    server_store.chmod(0o600)
    return ServerTls(ca_file=ca_pem, keystore=server_store, keystore_password=password)


def _keytool(keytool: str, *args: str) -> None:
    result = subprocess.run(
        [keytool, *args], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        # keytool never echoes -storepass; its own message says which step failed and why.
        raise BrokerStartError(
            f"keytool {args[0]} failed: {(result.stdout + result.stderr).strip()[-300:]}",
            hint="check that the JDK's keytool works (`keytool -help`)",
        )
