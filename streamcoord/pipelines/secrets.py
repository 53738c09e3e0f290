"""Secrets by reference: executor config names a secret, the worker reads it on its side.

A value written ``{secret: {env: NAME}}`` or ``{secret: {file: /path}}`` anywhere in
``executor.config`` is a reference; the built-in executors accept one wherever ``env`` (shell)
or ``headers`` (webhook) take a string. The coordinator copies the reference into the trigger
untouched, so only the name travels on Kafka; :mod:`streamcoord.worker.secrets` resolves it.

Also here: :func:`literal_secrets`, the heuristics behind ``streamcoord validate``'s warnings
about values that look like secrets written in plain text. Pure: nothing here reads a secret.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from streamcoord.pipelines.problem import FieldPath

__all__ = [
    "SecretRef",
    "SecretRefError",
    "SecretReference",
    "literal_secrets",
    "secret_ref",
    "secret_reference_schema",
    "secret_refs",
]

_ENV_NAME: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"


class SecretRef(BaseModel):
    """Where the worker finds one secret: exactly one of ``env`` and ``file``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = Field(
        None, pattern=_ENV_NAME, description="An environment variable of the worker process."
    )
    file: str | None = Field(
        None,
        min_length=1,
        description=(
            "A file the worker can read, e.g. a mounted Kubernetes Secret; one trailing"
            " newline is dropped."
        ),
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference names exactly one of 'env' and 'file'")
        return self

    def __str__(self) -> str:
        # What error messages and logs name: the reference as written, never a value.
        return (
            f"{{secret: {{env: {self.env}}}}}" if self.env else f"{{secret: {{file: {self.file}}}}}"
        )


class SecretReference(BaseModel):
    """The written form of a reference: ``{secret: {env: NAME}}`` or ``{secret: {file: PATH}}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: SecretRef


class SecretRefError(ValueError):
    """A mapping written as a secret reference that is not a valid one."""


def secret_ref(value: Any) -> SecretRef | None:
    """The reference ``value`` holds, None when it is not one; raises :class:`SecretRefError`.

    A reference is a mapping whose only key is ``secret`` and whose value is a mapping, so a
    config key that happens to be called ``secret`` (with a string value) is left alone.
    """
    if not (isinstance(value, dict) and list(value) == ["secret"]):
        return None
    if not isinstance(value["secret"], dict):
        return None
    try:
        return SecretReference.model_validate(value).secret
    except ValidationError as error:
        reasons = "; ".join(_reason(detail["loc"], detail["msg"]) for detail in error.errors())
        raise SecretRefError(
            f"invalid secret reference: {reasons}; write {{secret: {{env: NAME}}}}"
            " or {secret: {file: /path}}"
        ) from None


def _reason(loc: tuple[int | str, ...], message: str) -> str:
    where = ".".join(str(part) for part in loc[1:])
    return f"{where}: {message}" if where else message.removeprefix("Value error, ")


def secret_refs(value: JsonValue, path: FieldPath = ()) -> Iterator[tuple[FieldPath, Any]]:
    """Every reference (or reference-shaped mapping) under ``value``, with its path."""
    if secret_ref_shaped(value):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from secret_refs(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from secret_refs(item, (*path, index))


def secret_ref_shaped(value: Any) -> bool:
    """Whether ``value`` is written as a reference (valid or not)."""
    return (
        isinstance(value, dict) and list(value) == ["secret"] and isinstance(value["secret"], dict)
    )


def secret_reference_schema() -> dict[str, Any]:
    """The JSON Schema of a written reference, self-contained (no ``$defs``)."""
    schema = SecretReference.model_json_schema()
    source = schema.pop("$defs")["SecretRef"]
    source["oneOf"] = [{"required": ["env"]}, {"required": ["file"]}]
    schema["properties"]["secret"] = source
    return schema


# ---- literal secrets: what validate warns about ---------------------------------------------

_SECRET_KEY: Final = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[-_]?key|authorization|credentials?|"
    r"private[-_]?key|access[-_]?key",
    re.IGNORECASE,
)
_AUTH_SCHEME: Final = re.compile(r"^\s*(bearer|basic|token|digest)\s+\S{6,}", re.IGNORECASE)
_AWS_KEY: Final = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
_PRIVATE_KEY: Final = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_URL_PASSWORD: Final = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
_TOKEN_LIKE: Final = re.compile(r"^[A-Za-z0-9+/=_.\-~]{24,}$")
_MIN_ENTROPY_BITS: Final = 3.5  # per character; English words and paths stay below
_MIN_RUN: Final = 20
_SEPARATORS: Final = re.compile(r"[-_.~]")


def literal_secrets(value: JsonValue, path: FieldPath = ()) -> Iterator[tuple[FieldPath, str]]:
    """``(path, why)`` for every string under ``value`` that looks like a literal secret."""
    if isinstance(value, dict):
        if secret_ref_shaped(value):
            return
        for key, item in value.items():
            if isinstance(item, str) and item and _SECRET_KEY.search(str(key)):
                yield (*path, key), f"{key!r} names a secret but holds a literal string"
            else:
                yield from literal_secrets(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from literal_secrets(item, (*path, index))
    elif isinstance(value, str):
        why = _looks_secret(value)
        if why:
            yield path, why


def _looks_secret(text: str) -> str:
    if _PRIVATE_KEY.search(text):
        return "the value holds a private key"
    if _AWS_KEY.search(text):
        return "the value holds what looks like an AWS access key id"
    if _AUTH_SCHEME.match(text):
        return "the value is an authorization credential (Bearer/Basic)"
    if _URL_PASSWORD.search(text):
        return "the URL holds a password"
    if _TOKEN_LIKE.match(text) and not text.startswith(("/", ".")) and _high_entropy(text):
        return "the value looks like a token (a long random string)"
    return ""


def _high_entropy(text: str) -> bool:
    # Random tokens have a long unbroken run of mixed letters and digits; identifiers, dates and
    # UUIDs (`orders.extract.2024-01-01`, `daily_report_v2`) are short runs between separators.
    if max(len(run) for run in _SEPARATORS.split(text)) < _MIN_RUN:
        return False
    if not (any(c.isalpha() for c in text) and any(c.isdigit() for c in text)):
        return False
    counts = Counter(text)
    bits = -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())
    return bits >= _MIN_ENTROPY_BITS
