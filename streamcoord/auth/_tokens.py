"""Tokens, roles and the check of one request's ``Authorization`` header."""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "AUDIT_LOGGER",
    "PRINCIPAL_ATTRIBUTE",
    "TOKEN_PREFIX",
    "Principal",
    "Refusal",
    "Role",
    "TokenRegistry",
    "audit_action",
    "audit_refusal",
    "hash_token",
    "is_loopback",
    "new_token",
]

#: Refused and allowed calls are logged here, one line each.
AUDIT_LOGGER: Final = "streamcoord.audit"
#: The CloudEvents extension attribute naming who sent an event (a command, an ingested event).
PRINCIPAL_ATTRIBUTE: Final = "scprincipal"  # the one the core, signing and audit read
#: Every generated token starts so (secret scanners and people recognise it).
TOKEN_PREFIX: Final = "sct_"  # noqa: S105 - a prefix, not a secret

audit = logging.getLogger(AUDIT_LOGGER)


class Role(enum.IntEnum):
    """What a token may do; each role includes the ones below it."""

    viewer = 1  # read
    operator = 2  # read, request runs, cancel, retry, send events to ingest
    admin = 3  # everything, pause and resume included

    @classmethod
    def named(cls, name: str) -> Role:
        return cls[name]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a token's name and role (``anonymous`` under ``--insecure``)."""

    name: str
    role: Role


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: 401 (no or unknown token) or 403 (role too low)."""

    status: int
    code: str  # "unauthorized" or "forbidden"
    message: str


def new_token() -> str:
    """A fresh token: 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token: what settings store."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class TokenRegistry:
    """The tokens one server accepts, by hash; ``open_as`` makes every caller that principal
    (the explicit ``--insecure`` mode, and ingest with no tokens on loopback)."""

    def __init__(
        self, tokens: Iterable[tuple[str, str, Role]] = (), *, open_as: Principal | None = None
    ) -> None:
        self._tokens = [(digest.lower(), Principal(name, role)) for name, digest, role in tokens]
        self.open_as = open_as

    @property
    def empty(self) -> bool:
        return not self._tokens

    def add(self, name: str, digest: str, role: Role) -> None:
        self._tokens.append((digest.lower(), Principal(name, role)))

    def principal(self, authorization: str | None) -> Principal | None:
        """The token's principal, or None when the header holds no token this registry knows."""
        if self.open_as is not None:
            return self.open_as
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = hash_token(token.strip())
        found = None
        for known, principal in self._tokens:  # compare with every one: no early exit to time
            if hmac.compare_digest(known, digest):
                found = principal
        return found

    def check(self, authorization: str | None, needed: Role) -> Principal | Refusal:
        """The caller, or why it is refused."""
        principal = self.principal(authorization)
        if principal is None:
            what = "no bearer token" if not authorization else "an unknown or malformed token"
            return Refusal(
                401, "unauthorized",
                f"the request carries {what}; send `Authorization: Bearer <token>`",
            )  # fmt: skip
        if principal.role < needed:
            return Refusal(
                403, "forbidden",
                f"token {principal.name!r} has role {principal.role.name}; this needs"
                f" {needed.name}",
            )  # fmt: skip
        return principal


def audit_refusal(refusal: Refusal, method: str, path: str, client: str | None) -> None:
    """One audit line for a refused request."""
    audit.warning(
        "refused status=%d code=%s method=%s path=%s client=%s: %s",
        refusal.status, refusal.code, method, path, client or "-", refusal.message,
    )  # fmt: skip


def audit_action(principal: Principal, action: str, subject: str, command_id: str) -> None:
    """One audit line for a command a caller sent."""
    audit.info(
        "action principal=%s role=%s action=%s subject=%s command=%s",
        principal.name, principal.role.name, action, subject, command_id,
    )  # fmt: skip
