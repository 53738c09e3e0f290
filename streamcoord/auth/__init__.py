"""Who may call streamcoord's HTTP endpoints (``serve``'s API and ``ingest``).

Bearer tokens with a role each (``viewer`` reads, ``operator`` reads and acts, ``admin`` may do
everything, pause and resume included). Only the SHA-256 of a token is stored (tokens are 256
random bits, so a plain hash is as strong as a slow one); a presented token is hashed and
compared with :func:`hmac.compare_digest`. Refusals are written as audit lines on the
``streamcoord.audit`` logger.
"""

from streamcoord.auth._limits import BodyLimit
from streamcoord.auth._settings import AuthSettings, TokenSpec
from streamcoord.auth._tokens import (
    AUDIT_LOGGER,
    PRINCIPAL_ATTRIBUTE,
    TOKEN_PREFIX,
    Principal,
    Refusal,
    Role,
    TokenRegistry,
    audit_action,
    audit_refusal,
    hash_token,
    is_loopback,
    new_token,
)

__all__ = [
    "AUDIT_LOGGER",
    "PRINCIPAL_ATTRIBUTE",
    "TOKEN_PREFIX",
    "AuthSettings",
    "BodyLimit",
    "Principal",
    "Refusal",
    "Role",
    "TokenRegistry",
    "TokenSpec",
    "audit_action",
    "audit_refusal",
    "hash_token",
    "is_loopback",
    "new_token",
]
