"""``streamcoord emit TYPE``: put one CloudEvent on the events topic and print its id."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from streamcoord.cli.common import BootstrapOption, ConfigOption, PrefixOption, kafka_settings
from streamcoord.cli.telemetry import tracing_requested
from streamcoord.errors import ConfigError

if TYPE_CHECKING:
    from streamcoord.events.codec import EncodeMode

__all__ = ["emit_command", "parse_data"]


def parse_data(text: str | None) -> Any:
    """``--data``: inline JSON, or ``@path`` to read JSON from a file (``@-``: stdin)."""
    if text is None:
        return None
    raw: str | bytes = text
    if text.startswith("@"):
        name = text[1:]
        try:
            raw = (
                typer.get_binary_stream("stdin").read() if name == "-" else Path(name).read_bytes()
            )
        except OSError as error:
            raise ConfigError(f"--data {text}: cannot read the file: {error.strerror}") from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ConfigError(
            f"--data is not valid JSON: {error}", hint="quote it for the shell: --data '{\"a\": 1}'"
        ) from None


def emit_command(
    event_type: Annotated[
        str, typer.Argument(metavar="TYPE", help="CloudEvents type, e.g. shop.orders.landed.")
    ],
    source: Annotated[str, typer.Option(help="CloudEvents source (who emits).")],
    subject: Annotated[str | None, typer.Option(help="CloudEvents subject.")] = None,
    data: Annotated[str | None, typer.Option(help="JSON data, or @file (@- for stdin).")] = None,
    event_id: Annotated[
        str | None, typer.Option("--id", help="Event id (default: a random UUID).")
    ] = None,
    binary: Annotated[
        bool, typer.Option("--binary", help="Binary content mode (ce_* headers).")
    ] = False,
    signing_key: Annotated[
        Path | None,
        typer.Option(
            "--signing-key",
            metavar="PATH",
            help="Sign the event with this Ed25519 private key (PEM), for policies that require"
            " a signature.",
        ),
    ] = None,
    principal: Annotated[
        str | None,
        typer.Option(help="Who sends the event (scprincipal); its key signs it."),
    ] = None,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:
    """Produce a CloudEvent (acks=all) and print its id once the broker acknowledged it."""
    # The Kafka client, the event models and OpenTelemetry load here, not for `--help`.
    from streamcoord.emit import Emitter  # noqa: PLC0415
    from streamcoord.events.signing import load_signing_key  # noqa: PLC0415

    settings = kafka_settings(bootstrap_servers, config, topic_prefix)
    payload = parse_data(data)
    if principal is not None and signing_key is None:
        raise ConfigError(
            "--principal names who signs: it needs --signing-key",
            hint="give the principal's Ed25519 private key with --signing-key PATH",
        )
    key = load_signing_key(signing_key) if signing_key is not None else None

    # With OTEL_* asking for export, the event carries the context of a `send` span: the
    # parent of the run it starts, so the run's trace begins at the emitting system.
    tracing = None
    hooks = []
    if tracing_requested():
        from streamcoord.emit.tracing import producer_span_hook  # noqa: PLC0415
        from streamcoord.telemetry import configure_tracing  # noqa: PLC0415

        tracing = configure_tracing("streamcoord-emit")
        hooks = [producer_span_hook()]

    async def send() -> str:
        mode: EncodeMode = "binary" if binary else "structured"
        async with Emitter(
            settings, mode=mode, hooks=hooks, signing_key=key, principal=principal
        ) as emitter:
            event = await emitter.emit(
                event_type, source=source, data=payload, subject=subject, id=event_id
            )
        return event.id

    try:
        typer.echo(asyncio.run(send()))
    finally:
        if tracing is not None:
            tracing.shutdown()
