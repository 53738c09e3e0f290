"""Resolving secret references on the worker, and keeping the values out of what it reports.

Executor config names secrets (``{secret: {env: NAME}}``, ``{secret: {file: /path}}``, see
:mod:`streamcoord.pipelines.secrets`); only that reference travels in the trigger. Just before an
attempt runs, its executor asks a :class:`Secrets` for the values: a variable of the worker's
environment, or a file the worker can read (a mounted Kubernetes Secret). A missing secret fails
the attempt for good, naming the reference, never a value.

The same :class:`Secrets` then redacts every value it handed out from the attempt's error
message, output tails and outputs, so a command echoing its token does not publish it in the
``failed`` or ``succeeded`` event, a log line or a span::

    secrets = Secrets()
    env = secrets.resolve(ctx.config.get("env"), "executor.config.env")
    try:
        ...
    except StageError as error:
        raise secrets.redacted(error) from None
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final, TypeVar

from pydantic import JsonValue

from streamcoord.pipelines.secrets import SecretRef, SecretRefError, secret_ref
from streamcoord.worker._errors import NonRetryableError, StageError

__all__ = ["REDACTED", "SecretNotFoundError", "Secrets"]

#: What stands in for a secret value in anything the worker reports.
REDACTED: Final = "[REDACTED]"

_E = TypeVar("_E", bound=StageError)


class SecretNotFoundError(NonRetryableError):
    """A referenced secret is not there: unset variable, unreadable file. Retrying the same
    worker will not make it appear; the message names the reference, never a value."""


class Secrets:
    """The secrets of one attempt: resolves references and remembers the values to redact.

    ``environ`` defaults to the worker process's environment; tests pass their own.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._values: list[str] = []

    def resolve(self, value: JsonValue, where: str) -> JsonValue:
        """``value`` with every reference in it replaced by the secret's text.

        ``where`` (``executor.config.env``) names the place in error messages. Raises
        :class:`SecretNotFoundError`, or :class:`NonRetryableError` for a malformed reference.
        """
        try:
            ref = secret_ref(value)
        except SecretRefError as error:
            raise NonRetryableError(f"{where}: {error}") from None
        if ref is not None:
            return self._read(ref, where)
        if isinstance(value, dict):
            return {key: self.resolve(item, f"{where}.{key}") for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item, f"{where}[{index}]") for index, item in enumerate(value)]
        return value

    def _read(self, ref: SecretRef, where: str) -> str:
        if ref.env is not None:
            text = self._environ.get(ref.env)
            if text is None:
                raise SecretNotFoundError(
                    f"secret {ref} for {where} is not set in the worker's environment",
                    hint=f"give the worker the variable {ref.env} (e.g. from a Kubernetes Secret)",
                )
        else:
            text = _read_file(ref, where)
        if text:
            self._values.append(text)
        return text

    @property
    def longest(self) -> int:
        """The length in bytes of the longest value handed out (0 when none)."""
        return max((len(value.encode()) for value in self._values), default=0)

    def redact(self, text: str) -> str:
        """``text`` with every value handed out replaced by :data:`REDACTED`."""
        for value in self._by_length():
            text = text.replace(value, REDACTED)
        return text

    def redact_tail(self, data: bytes, *, truncated: bool) -> str:
        """The last bytes of a stream, redacted, as text.

        Keep :attr:`longest` - 1 bytes more than you want to show: when the start was cut
        off (``truncated``), a value may have been cut in half there, out of the redaction's
        sight; those first bytes are dropped after redacting whole values.
        """
        for value in self._by_length():
            data = data.replace(value.encode(), REDACTED.encode())
        if truncated:
            data = data[max(self.longest - 1, 0) :]
        return data.decode(errors="replace")

    def redact_outputs(self, value: JsonValue) -> JsonValue:
        """Outputs with every string redacted (keys too), however deeply nested."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact(k): self.redact_outputs(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact_outputs(item) for item in value]
        return value

    def redacted(self, error: _E) -> _E:
        """A copy of ``error`` (same class, so the same retry decision) with values redacted."""
        if not self._values:
            return error
        return type(error)(self.redact(error.message), hint=self.redact(error.hint))

    def _by_length(self) -> list[str]:
        # Longest first: a value containing another is replaced whole.
        return sorted(set(self._values), key=len, reverse=True)


def _read_file(ref: SecretRef, where: str) -> str:
    path = Path(str(ref.file))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise SecretNotFoundError(
            f"secret {ref} for {where} cannot be read by the worker: {reason}",
            hint="mount the file into the worker (e.g. a Kubernetes Secret volume)",
        ) from None
    # `echo token > file` adds a newline that is not part of the secret.
    return text.removesuffix("\n").removesuffix("\r")
