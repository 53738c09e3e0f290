"""Ed25519 signatures over CloudEvents: what an emitter signs and what a policy verifies.

A signature proves who sent an event without trusting the way it came in: Kafka does not tell a
consumer who produced a record. The signed bytes are the event's canonical JSON form (its
attributes and data, extension attributes included, ``None`` values left out, keys sorted, no
whitespace) without the signature attribute itself. The principal the sender claims
(``scprincipal``) is among the signed attributes, so it cannot be changed without breaking the
signature. Pure computation: the core verifies at decision time, and a replay verifies alike.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from streamcoord.errors import ConfigError
from streamcoord.events.models import OWN_EVENT_CLASSES, CloudEvent

__all__ = [
    "PRINCIPAL_ATTRIBUTE",
    "SIGNATURE_ATTRIBUTE",
    "canonical_bytes",
    "load_signing_key",
    "parse_public_key",
    "public_key_text",
    "sign_event",
    "signature_of",
    "verify_event",
]

#: CloudEvents extension attribute naming who sent the event (stamped or claimed and signed).
PRINCIPAL_ATTRIBUTE = "scprincipal"
#: CloudEvents extension attribute holding the base64 Ed25519 signature of the event.
SIGNATURE_ATTRIBUTE = "scsignature"
# Attributes that are routing, not content: the coordinators' own partition key.
_UNSIGNED = frozenset({SIGNATURE_ATTRIBUTE, "sckey"})
# The data model of each of streamcoord's own event types.
_OWN_DATA: dict[str, type[BaseModel]] = {
    cls.TYPE: annotation
    for cls in OWN_EVENT_CLASSES
    if isinstance(annotation := cls.model_fields["data"].annotation, type)
    and issubclass(annotation, BaseModel)
}


def canonical_bytes(event: CloudEvent) -> bytes:
    """The bytes a signature covers: the event's canonical JSON without its signature.

    The data of streamcoord's own types signs in its typed form without default values, so a
    sender that wrote it as a plain mapping (or left a default out) and a receiver whose codec
    typed it sign the same bytes.
    """
    form: dict[str, Any] = event.model_dump(
        mode="json", exclude_none=True, exclude={"data", *_UNSIGNED}
    )
    data = _data_form(event)
    if isinstance(data, bytes):  # binary data signs as its base64, like the JSON format
        form["data_base64"] = base64.b64encode(data).decode()
    elif data is not None:
        form["data"] = data
    text = json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


def _data_form(event: CloudEvent) -> Any:
    data = event.data
    model = _OWN_DATA.get(event.type)
    if model is not None and not isinstance(data, BaseModel):
        # invalid data signs as it is (the coordinator rejects it anyway)
        with contextlib.suppress(ValidationError):
            data = model.model_validate(data)
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json", exclude_defaults=True)
    if isinstance(data, bytes):
        return data
    return to_jsonable_python(data)


def sign_event(
    event: CloudEvent, key: Ed25519PrivateKey, principal: str | None = None
) -> CloudEvent:
    """``event`` with ``principal`` (when given) and the signature of the result attached."""
    if principal is not None:
        event = event.model_copy(update={PRINCIPAL_ATTRIBUTE: principal})
    signature = base64.b64encode(key.sign(canonical_bytes(event))).decode()
    return event.model_copy(update={SIGNATURE_ATTRIBUTE: signature})


def signature_of(event: CloudEvent) -> str | None:
    """The event's signature attribute, if it has one (as text)."""
    value = (event.model_extra or {}).get(SIGNATURE_ATTRIBUTE)
    return value if isinstance(value, str) else None


def verify_event(event: CloudEvent, key: Ed25519PublicKey) -> bool:
    """Whether the event carries a valid signature by ``key``."""
    signature = signature_of(event)
    if signature is None:
        return False
    try:
        key.verify(base64.b64decode(signature, validate=True), canonical_bytes(event))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def parse_public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from the base64 of its 32 raw bytes; ValueError when it is not."""
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64: {exc}") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, this one {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The form a policy registers a key in: base64 of the public key's 32 raw bytes."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_signing_key(path: Path | str) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file (``openssl genpkey -algorithm ed25519``)."""
    file = Path(path)
    try:
        key = serialization.load_pem_private_key(file.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"cannot read an Ed25519 private key from {file}: {exc}",
            hint="create one with `openssl genpkey -algorithm ed25519 -out KEY.pem`",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(
            f"{file} holds a {type(key).__name__}, not an Ed25519 key",
            hint="create one with `openssl genpkey -algorithm ed25519 -out KEY.pem`",
        )
    return key
