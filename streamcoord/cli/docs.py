"""``streamcoord docs``: documentation generated from the code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streamcoord.deploy.configuration import (
    CONFIGURATION_REFERENCE,
    render_configuration_reference,
)
from streamcoord.errors import ConfigError

__all__ = ["app", "configuration"]

app = typer.Typer(help="Documentation generated from the code.", no_args_is_help=True)


@app.command()
def configuration(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The reference file.", dir_okay=False)
    ] = Path(CONFIGURATION_REFERENCE),
    check: Annotated[
        bool, typer.Option("--check", help="Fail if the file is stale; write nothing.")
    ] = False,
) -> None:
    """Write the configuration reference (every setting, its environment variable, its default)."""
    rendered = render_configuration_reference()
    try:
        current: str | None = output.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if check:
        if current != rendered:
            raise ConfigError(
                f"{output} is stale: the settings models changed",
                hint="run `streamcoord docs configuration` and commit the result",
            )
        typer.echo(f"{output} is up to date")
        return
    if current != rendered:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(rendered, encoding="utf-8")
    typer.echo(f"wrote {output}" if current != rendered else f"{output} was up to date")
