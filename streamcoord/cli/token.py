"""``streamcoord token create NAME --role ROLE``: a new API token and the line that accepts it."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
import typer

from streamcoord.auth import hash_token, new_token

__all__ = ["app", "create"]

app = typer.Typer(help="API tokens for `streamcoord serve` and `streamcoord ingest`.")


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Who or what uses it; the principal of its actions.")],
    role: Annotated[
        Literal["viewer", "operator", "admin"],
        typer.Option(help="viewer reads; operator also acts on runs; admin also pauses."),
    ] = "viewer",
) -> None:
    """Print a new token (keep it secret; it is not stored) and the settings that accept it."""
    token = new_token()
    entry = {"name": name, "role": role, "sha256": hash_token(token)}
    typer.echo(f"token: {token}")
    typer.echo("\nadd to the settings file (--config / STREAMCOORD_CONFIG):\n")
    typer.echo(f'[[auth.tokens]]\nname = "{name}"\nrole = "{role}"\nsha256 = "{entry["sha256"]}"')
    typer.echo("\nor to STREAMCOORD_AUTH_TOKENS (a JSON list):\n")
    typer.echo(orjson.dumps([entry]).decode())
