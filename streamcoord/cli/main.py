"""The ``streamcoord`` console script.

Commands live in their own modules and are registered below in one line each. ``main()`` turns
every ``StreamcoordError`` into one red line (plus its hint) on stderr and a non-zero exit code;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._click import Context
from typer.core import TyperGroup

from streamcoord import __version__
from streamcoord.errors import StreamcoordError

if TYPE_CHECKING:
    from rich.console import Console

# Commands are imported when invoked, not to start the program: a command module may pull in
# aiokafka, FastAPI, OpenTelemetry or the spec models, and `streamcoord emit` must not pay for
# them all (see tests/unit/test_cli_startup.py). Nothing heavy at module level here.

__all__ = ["COMMANDS", "app", "main"]

#: Exit code for a ``StreamcoordError`` (usage errors keep Click's 2).
ERROR_EXIT_CODE = 1

# ---- Command registrations: one line per command, in the order `--help` lists them -----------
#   "name": ("module", "function")   a single command: streamcoord.cli.<module>.<function>
#   "name": ("module", "app")        a command group: a typer.Typer in streamcoord.cli.<module>
COMMANDS: dict[str, tuple[str, str]] = {
    "dev": ("dev", "app"),
    "topics": ("topics", "app"),
    "docs": ("docs", "app"),
    "validate": ("validate", "validate"),
    "graph": ("graph", "graph"),
    "replay": ("replay", "replay_command"),
    "run": ("run", "run"),
    "demo": ("demo", "demo"),
    "status": ("inspect", "status"),
    "runs": ("inspect", "runs"),
    "explain": ("inspect", "explain"),
    "worker": ("worker", "app"),
    "emit": ("emit", "emit_command"),
    "ingest": ("ingest", "ingest"),
    "trigger": ("operate", "trigger"),
    "cancel": ("operate", "cancel"),
    "retry": ("operate", "retry"),
    "pause": ("operate", "pause"),
    "resume": ("operate", "resume"),
    "specs": ("specs", "app"),
    "dbt": ("dbt", "app"),
    "airflow": ("airflow", "app"),
    "serve": ("serve", "serve"),
    "token": ("token", "app"),
    "audit": ("audit", "audit"),
    "backfill": ("backfill", "backfill"),
    "lineage": ("lineage", "lineage"),
}
# ---- end of command registrations ----------------------------------------------------------

_MARKUP: Any = "markdown"


def load_command(name: str) -> typer.core.TyperCommand | TyperGroup:
    """The click command of ``name``, its module imported now."""
    module_name, attribute = COMMANDS[name]
    target = getattr(importlib.import_module(f"streamcoord.cli.{module_name}"), attribute)
    if isinstance(target, typer.Typer):
        group = typer.main.get_group(target)
        group.name = name
        return group
    single = typer.Typer(rich_markup_mode=_MARKUP, add_completion=False)
    single.command(name)(target)
    command = typer.main.get_command(single)
    assert isinstance(command, typer.core.TyperCommand)  # one command, no callback
    return command


class _LazyGroup(TyperGroup):
    """The root group: lists every command, imports one only when it is asked for."""

    def list_commands(self, ctx: Context) -> list[str]:
        eager = [name for name in super().list_commands(ctx) if name not in COMMANDS]
        return [*COMMANDS, *eager]

    def get_command(self, ctx: Context, cmd_name: str) -> Any:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.commands[cmd_name] = load_command(cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    name="streamcoord",
    cls=_LazyGroup,
    help="Event-driven pipeline coordinator on Kafka.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=_MARKUP,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"streamcoord {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_show_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Event-driven pipeline coordinator on Kafka."""


def report(error: StreamcoordError, console: Console | None = None) -> None:
    """Print ``error`` as one red line, and its hint on the next, to stderr."""
    from rich.console import Console  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    out = console or Console(stderr=True, highlight=False, soft_wrap=True)
    out.print(Text("error: ", style="bold red") + Text(error.message, style="red"))
    if error.hint:
        out.print(Text("hint: ", style="bold") + Text(error.hint))


def main() -> None:
    """Entry point of the console script."""
    try:
        app()
    except StreamcoordError as error:
        report(error)
        sys.exit(ERROR_EXIT_CODE)


if __name__ == "__main__":
    main()
