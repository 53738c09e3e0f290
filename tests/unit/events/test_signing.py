"""Signed events stay verifiable through the wire format and break when anything changes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from streamcoord.errors import ConfigError
from streamcoord.events.codec import decode, encode
from streamcoord.events.models import CloudEvent, ExternalEvent, RunCancel
from streamcoord.events.signing import (
    canonical_bytes,
    load_signing_key,
    parse_public_key,
    public_key_text,
    sign_event,
    verify_event,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))

EVENTS: list[CloudEvent] = [
    ExternalEvent(
        id="e1",
        source="erp/eu",
        type="order.placed",
        subject="o-1",
        time=datetime(2026, 1, 5, 12, 30, tzinfo=UTC),
        data={"day": "2026-01-05", "amount": 10.5, "lines": [1, 2], "name": "é"},
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ),
    RunCancel(id="c1", source="cli/ops", data={"run_id": "orders/2026-01-05"}),
    ExternalEvent(
        id="b1", source="cam", type="frame", datacontenttype="image/png", data=b"\x89PNG\x00"
    ),
]


@pytest.mark.parametrize("mode", ["structured", "binary"])
@pytest.mark.parametrize("event", EVENTS, ids=["external", "command", "binary-data"])
def test_a_signature_survives_encoding_and_decoding(event: CloudEvent, mode: str) -> None:
    signed = sign_event(event, KEY, "erp")
    value, headers = encode(signed, mode)  # type: ignore[arg-type]  # parametrized literal
    received = decode(value, headers)
    assert verify_event(received, KEY.public_key())
    assert not verify_event(received, OTHER.public_key())


def test_any_change_after_signing_breaks_the_signature() -> None:
    signed = sign_event(EVENTS[0], KEY, "erp")
    for change in (
        {"scprincipal": "admin"},
        {"source": "erp/us"},
        {"data": {"day": "x"}},
        {"subject": None},
        {"scextra": "1"},
    ):
        assert not verify_event(signed.model_copy(update=change), KEY.public_key()), change
    assert not verify_event(EVENTS[0], KEY.public_key())  # unsigned
    # the coordinators' routing key is not content: adding it keeps the signature
    assert verify_event(signed.model_copy(update={"sckey": "p/k"}), KEY.public_key())


def test_the_signed_bytes_are_canonical_json_without_the_signature() -> None:
    signed = sign_event(EVENTS[1], KEY)
    assert canonical_bytes(signed) == canonical_bytes(EVENTS[1])
    assert canonical_bytes(EVENTS[1]).startswith(b'{"data":{"run_id":"orders/2026-01-05"}')


def test_a_command_signed_as_a_plain_mapping_verifies_once_the_codec_typed_it() -> None:
    # e.g. a producer in another language: its data has no defaults filled in
    plain = CloudEvent(
        id="c1", source="cli/ops", type=RunCancel.TYPE, data={"run_id": "orders/2026-01-05"}
    )
    value, headers = encode(sign_event(plain, KEY, "ops"))
    received = decode(value, headers)
    assert isinstance(received, RunCancel)
    assert verify_event(received, KEY.public_key())
    spelled_out = CloudEvent(
        id="c1",
        source="cli/ops",
        type=RunCancel.TYPE,
        data={"run_id": "orders/2026-01-05", "reason": ""},
    )
    assert canonical_bytes(spelled_out) == canonical_bytes(plain)
    broken = CloudEvent(id="c1", source="cli/ops", type=RunCancel.TYPE, data={"run": 1})
    assert b'"data":{"run":1}' in canonical_bytes(broken)


def test_public_keys_are_written_as_base64_of_their_raw_bytes() -> None:
    text = public_key_text(KEY)
    assert public_key_text(KEY.public_key()) == text
    assert len(text) == 44
    assert public_key_text(parse_public_key(text)) == text
    with pytest.raises(ValueError, match="not base64"):
        parse_public_key("a key!")
    with pytest.raises(ValueError, match="has 32 bytes, this one 3"):
        parse_public_key("AAAA")


def test_a_signing_key_is_read_from_a_pem_file(tmp_path: Path) -> None:
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert public_key_text(load_signing_key(pem)) == public_key_text(KEY)
    with pytest.raises(ConfigError, match="cannot read an Ed25519 private key"):
        load_signing_key(tmp_path / "missing.pem")
    from cryptography.hazmat.primitives.asymmetric import ec

    other = tmp_path / "ec.pem"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ConfigError, match="not an Ed25519 key"):
        load_signing_key(other)
