"""The ``streamcoord`` console script.

Commands live in their own modules and are registered below in one line each. ``main()`` turns
every ``StreamcoordError`` into one red line (plus its hint) on stderr and a non-zero exit code;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from streamcoord import __version__
from streamcoord.cli import airflow as airflow_cli
from streamcoord.cli import audit as audit_cli
from streamcoord.cli import backfill as backfill_cli
from streamcoord.cli import dbt as dbt_cli
from streamcoord.cli import demo as demo_cli
from streamcoord.cli import dev, docs, graph, operate, topics, validate
from streamcoord.cli import emit as emit_cli
from streamcoord.cli import ingest as ingest_cli
from streamcoord.cli import inspect as inspect_cli
from streamcoord.cli import lineage as lineage_cli
from streamcoord.cli import replay as replay_cli
from streamcoord.cli import run as run_cli
from streamcoord.cli import serve as serve_cli
from streamcoord.cli import specs as specs_cli
from streamcoord.cli import token as token_cli
from streamcoord.cli import worker as worker_cli
from streamcoord.errors import StreamcoordError

__all__ = ["app", "main"]

#: Exit code for a ``StreamcoordError`` (usage errors keep Click's 2).
ERROR_EXIT_CODE = 1

app = typer.Typer(
    name="streamcoord",
    help="Event-driven pipeline coordinator on Kafka.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

# ---- Command registrations: one line per command module, e.g. ------------------------------
#   app.command()(validate.validate)           a single command (import it above)
#   app.add_typer(topics.app, name="topics")   a command group
app.add_typer(dev.app, name="dev")
app.add_typer(topics.app, name="topics")
app.add_typer(docs.app, name="docs")
app.command("validate")(validate.validate)
app.command("graph")(graph.graph)
app.command("replay")(replay_cli.replay_command)
app.command("run")(run_cli.run)
app.command("demo")(demo_cli.demo)
app.command("status")(inspect_cli.status)
app.command("runs")(inspect_cli.runs)
app.command("explain")(inspect_cli.explain)
app.add_typer(worker_cli.app, name="worker")
app.command("emit")(emit_cli.emit_command)
app.command("ingest")(ingest_cli.ingest)
app.command("trigger")(operate.trigger)
app.command("cancel")(operate.cancel)
app.command("retry")(operate.retry)
app.command("pause")(operate.pause)
app.command("resume")(operate.resume)
app.add_typer(specs_cli.app, name="specs")
app.add_typer(dbt_cli.app, name="dbt")
app.add_typer(airflow_cli.app, name="airflow")
app.command("serve")(serve_cli.serve)
app.add_typer(token_cli.app, name="token")
app.command("audit")(audit_cli.audit)
app.command("backfill")(backfill_cli.backfill)
app.command("lineage")(lineage_cli.lineage)
# ---- end of command registrations ----------------------------------------------------------


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
