"""Built-in executor: POST the trigger as a CloudEvent to ``executor.config.url``.

The request uses the CloudEvents HTTP binding in structured mode
(``content-type: application/cloudevents+json``, trace context in ``traceparent``). The answer:

* 2xx with a JSON body ``{"outcome": "succeeded", "outputs": {...}}`` or
  ``{"outcome": "failed", "error": "...", "retryable": true}``; an empty 2xx body succeeds;
* 202 Accepted: the receiver decides later by posting ``streamcoord.stage.succeeded`` or
  ``streamcoord.stage.failed`` (for this run, stage and attempt) to the ingest endpoint;
* 408, 429, 5xx and connection errors fail retryably; other 4xx fail for good.

Config: ``url`` (required), ``timeout_seconds`` (default 30), ``headers`` (a mapping; a value
may be a secret reference, resolved on this worker and redacted from the outcome, see
:mod:`streamcoord.worker.secrets`). The
request never outlives the attempt: when the trigger carries a deadline (the stage's execution
timeout), the request timeout is at most the time left until it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import httpx
import orjson
from pydantic import JsonValue

from streamcoord.events.codec import encode
from streamcoord.worker._context import StageContext
from streamcoord.worker._errors import NonRetryableError, StageError
from streamcoord.worker._registry import DEFERRED, Deferred, Outputs
from streamcoord.worker.secrets import Secrets

__all__ = ["WebhookExecutor", "outcome_of"]

_RETRYABLE_STATUS: Final = frozenset({408, 425, 429})
_MIN_TIMEOUT_S: Final = 0.001  # a deadline already past still makes a (failing) request


class WebhookExecutor:
    """A handler that calls one URL per attempt; pass ``client`` to reuse connections."""

    def __init__(self, client: httpx.AsyncClient | None = None, *, timeout_s: float = 30.0) -> None:
        self._client = client
        self.timeout_s = timeout_s

    async def __call__(self, ctx: StageContext) -> Outputs:
        """Post the trigger; the response (or a later callback) decides the outcome."""
        url = ctx.config.get("url")
        if not isinstance(url, str) or not url:
            raise NonRetryableError(
                "the stage has no executor.config.url for the webhook executor",
                hint="set executor.config.url in the pipeline spec",
            )
        secrets = Secrets()
        body, kafka_headers = encode(ctx.trigger, "structured")
        headers = {name: value.decode() for name, value in kafka_headers}
        headers.update(
            _extra_headers(secrets.resolve(ctx.config.get("headers"), "executor.config.headers"))
        )
        limit_s = _timeout(ctx.config, self.timeout_s)
        if ctx.deadline is not None:
            left = (ctx.deadline - datetime.now(UTC)).total_seconds()
            limit_s = max(min(limit_s, left), _MIN_TIMEOUT_S)
        try:
            response = await self._post(url, body, headers, limit_s)
            outputs = outcome_of(response.status_code, response.content)
        except StageError as error:  # a receiver may echo a header back in its error
            raise secrets.redacted(error) from None
        return _redacted(outputs, secrets)

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str], limit_s: float
    ) -> httpx.Response:
        try:
            if self._client is not None:
                return await self._client.post(url, content=body, headers=headers, timeout=limit_s)
            async with httpx.AsyncClient() as client:
                return await client.post(url, content=body, headers=headers, timeout=limit_s)
        except httpx.HTTPError as error:
            raise StageError(f"POST {url} failed: {type(error).__name__}: {error}") from None


def outcome_of(status: int, body: bytes) -> Outputs:
    """The attempt's outcome from a webhook's answer; raises StageError for a failure."""
    if status == 202:
        return DEFERRED
    if not 200 <= status < 300:
        text = body[:2048].decode(errors="replace")
        error = f"webhook answered HTTP {status}: {text}".rstrip(": ")
        if status >= 500 or status in _RETRYABLE_STATUS:
            raise StageError(error)
        raise NonRetryableError(error)
    if not body.strip():
        return {}
    reply = _json_object(body)
    outcome = reply.get("outcome", "succeeded")
    if outcome == "succeeded":
        outputs = reply.get("outputs", {})
        if not isinstance(outputs, dict):
            raise NonRetryableError("webhook reply: 'outputs' must be a JSON object")
        return outputs
    if outcome == "failed":
        message = str(reply.get("error") or "the webhook reported a failure")
        raise (StageError if reply.get("retryable", True) is not False else NonRetryableError)(
            message
        )
    raise NonRetryableError(
        f"webhook reply: outcome must be 'succeeded' or 'failed', not {outcome!r}"
    )


def _json_object(body: bytes) -> dict[str, JsonValue]:
    try:
        reply = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise NonRetryableError(f"webhook reply is not JSON: {error}") from None
    if not isinstance(reply, dict):
        raise NonRetryableError("webhook reply must be a JSON object")
    return reply


def _timeout(config: Mapping[str, JsonValue], default: float) -> float:
    value = config.get("timeout_seconds", default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise NonRetryableError(f"executor.config.timeout_seconds must be > 0, not {value!r}")
    return float(value)


def _redacted(outputs: Outputs, secrets: Secrets) -> Outputs:
    if isinstance(outputs, Deferred) or outputs is None:
        return outputs
    redacted = secrets.redact_outputs(dict(outputs))
    return redacted if isinstance(redacted, dict) else {}


def _extra_headers(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
