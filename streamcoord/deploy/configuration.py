"""The configuration reference (``docs/configuration.md``), generated from the settings models.

Every field of every model in :data:`SETTINGS_MODELS` becomes one row: the option, its
environment variable, its type and bounds, its default and its description (the field's own
``description``). ``streamcoord docs configuration`` writes the file; a test fails when the
committed one is stale, as for the JSON Schemas. Pure: this module returns text.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Final, Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from streamcoord.kafka.settings import CONFIG_ENV, KafkaSettings
from streamcoord.runtime.settings import CoordinatorSettings
from streamcoord.worker import WorkerSettings

__all__ = [
    "CONFIGURATION_REFERENCE",
    "SETTINGS_MODELS",
    "SettingsModel",
    "environment_variable",
    "render_configuration_reference",
]

#: Where the reference lives in the repository.
CONFIGURATION_REFERENCE: Final = "docs/configuration.md"


@dataclass(frozen=True)
class SettingsModel:
    """One settings model and what the reference says about where its values come from."""

    title: str
    model: type[BaseSettings]
    used_by: str
    sources: str


SETTINGS_MODELS: Final[tuple[SettingsModel, ...]] = (
    SettingsModel(
        "Kafka connection",
        KafkaSettings,
        "every command that talks to Kafka",
        "Command-line options first (`--bootstrap-servers`, `--topic-prefix`), then the "
        "environment, then the `[kafka]` table (or the top-level keys) of the TOML or YAML file "
        f"named by `--config` / `{CONFIG_ENV}`, then the defaults.",
    ),
    SettingsModel(
        "Coordinator",
        CoordinatorSettings,
        "`streamcoord run`",
        "Command-line options of `streamcoord run` first, then the environment, then the "
        "defaults. `topic_prefix`: `--topic-prefix`, else the Kafka settings' `topic_prefix` "
        "when set, else `STREAMCOORD_TOPIC_PREFIX`.",
    ),
    SettingsModel(
        "Workers",
        WorkerSettings,
        "`streamcoord worker shell|webhook|streaming|dbt|airflow` and your own "
        "`streamcoord.worker.Worker`",
        "Command-line options of `streamcoord worker ...` first, then the environment, then "
        "the executor kind's defaults (`group_id` `streamcoord-worker-<kind>`; `concurrency`, "
        "`heartbeat_interval_s` and `shutdown_grace_s` as each command's `--help` shows), then "
        "the defaults below.",
    ),
)


_HEADER: Final = f"""# Configuration reference

<!-- Generated from the settings models by `streamcoord docs configuration`; do not edit.
     A test fails when this file is stale: run the command and commit the result. -->

Every setting of every streamcoord process, with its environment variable and default. Names
in a config file (`--config` / `{CONFIG_ENV}`) are the option names; environment variables are
not case-sensitive. Secrets (`SecretStr`) are never logged or printed; give them through the
environment from a secret store (a Kubernetes Secret, a systemd `EnvironmentFile` of mode 0600)
rather than in a file in a repository.

Outside these models: `{CONFIG_ENV}` names the settings file, and the OpenTelemetry variables
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_EXPORTER`,
`OTEL_EXPORTER_PROMETHEUS_HOST`, ...) configure tracing and metrics as the OpenTelemetry
specification defines them (see [observability.md](observability.md)).
"""


def environment_variable(model: type[BaseSettings], name: str) -> str:
    """The environment variable that sets field ``name`` of ``model``."""
    prefix = str(model.model_config.get("env_prefix", ""))
    return f"{prefix}{name}".upper()


def render_configuration_reference(
    models: tuple[SettingsModel, ...] = SETTINGS_MODELS,
) -> str:
    """The whole Markdown reference, in a stable order and format."""
    sections = [_HEADER, *(_section(entry) for entry in models)]
    return "\n".join(sections)


def _section(entry: SettingsModel) -> str:
    model = entry.model
    doc = (model.__doc__ or "").strip().splitlines()[0]
    prefix = str(model.model_config.get("env_prefix", "")).upper()
    lines = [
        f"## {entry.title}",
        "",
        f"`{model.__module__}.{model.__name__}`: {doc} Used by {entry.used_by}.",
        f"Environment variables: `{prefix}<OPTION>`. {entry.sources}",
        "",
        "| option | environment variable | type | default | description |",
        "|---|---|---|---|---|",
    ]
    lines += [_row(model, name, field) for name, field in model.model_fields.items()]
    return "\n".join(lines) + "\n"


def _row(model: type[BaseSettings], name: str, field: FieldInfo) -> str:
    cells = [
        f"`{name}`",
        f"`{environment_variable(model, name)}`",
        _escape(_type_name(field.annotation) + _bounds(field)),
        _escape(_default(field)),
        _escape(" ".join(_description(model, name, field).split())),
    ]
    return "| " + " | ".join(cells) + " |"


def _description(model: type[BaseSettings], name: str, field: FieldInfo) -> str:
    return field.description or ""


def _type_name(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in args)
    if origin is Literal:
        return " or ".join(f'"{arg}"' for arg in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(arg) for arg in args)}]"
    if annotation is types.NoneType:
        return "unset"
    return str(getattr(annotation, "__name__", annotation))


_BOUNDS: Final = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "items >="))


def _bounds(field: FieldInfo) -> str:
    found = [
        f"{symbol} {getattr(item, attribute)}"
        for item in field.metadata
        for attribute, symbol in _BOUNDS
        if getattr(item, attribute, None) is not None
    ]
    return f" ({', '.join(found)})" if found else ""


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]  # settings take no arguments
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, list):
        return "`" + ", ".join(str(item) for item in value) + "`"
    return f"`{value}`"


def _escape(cell: str) -> str:
    """A table cell: pipes would end it."""
    return cell.replace("|", "\\|")
