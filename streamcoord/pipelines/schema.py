"""The JSON Schema of spec files, generated from :class:`SpecFile` so editors validate as you type.

``python -m streamcoord.pipelines.schema [DIRECTORY]`` writes ``spec.schema.json`` (default
``topics/schemas``); ``--check`` fails instead when the file there is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from streamcoord.pipelines.executors import EXECUTOR_CONFIGS
from streamcoord.pipelines.models import SpecFile
from streamcoord.pipelines.secrets import secret_reference_schema

__all__ = ["SPEC_SCHEMA_FILE", "render_spec_schema", "spec_schema", "write_spec_schema"]

SPEC_SCHEMA_FILE = "spec.schema.json"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_DEFAULT_DIRECTORY = Path("topics/schemas")


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of one spec file (a mapping of ``pipelines`` and ``pools``)."""
    schema = SpecFile.model_json_schema(mode="validation")
    # The loader needs `kind` to pick a trigger's model; pydantic lists it as optional because
    # each model has a default for it, so editors would accept what validate rejects.
    for definition in schema.get("$defs", {}).values():
        if "kind" in definition.get("properties", {}):
            definition["required"] = ["kind", *definition.get("required", [])]
    _describe_executor_config(schema["$defs"])
    return {"$schema": _DIALECT, **schema}


def _describe_executor_config(definitions: dict[str, Any]) -> None:
    # Config is free-form JSON for any executor; the schema spells out the built-in executors'
    # string maps, whose values may be secret references, so editors know that form.
    definitions["SecretReference"] = secret_reference_schema()
    value = {
        "anyOf": [{"type": ["string", "number", "boolean"]}, {"$ref": "#/$defs/SecretReference"}]
    }
    string_map = {"type": "object", "additionalProperties": value}
    definitions["Executor"]["properties"]["config"]["properties"] = {
        "env": {**string_map, "description": "Shell executor: extra environment variables."},
        "headers": {**string_map, "description": "Webhook executor: extra HTTP headers."},
    }
    _describe_topic_configs(definitions)


def _describe_topic_configs(definitions: dict[str, Any]) -> None:
    # An executor on the dbt or Airflow worker's default topic takes that worker's config model;
    # config elsewhere stays free-form (keys like `command` mean different things per executor).
    rules = []
    for topic, model in EXECUTOR_CONFIGS.items():
        definitions[model.__name__] = _config_schema(model)
        rules.append({
            "if": {"properties": {"topic": {"const": topic}}, "required": ["topic"]},
            "then": {"properties": {"config": {"$ref": f"#/$defs/{model.__name__}"}}},
        })  # fmt: skip
    definitions["Executor"]["allOf"] = rules


def _config_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A config model's schema, pointing at the spec schema's own ``SecretReference``."""
    schema = model.model_json_schema(mode="validation", ref_template="#/$defs/{model}")
    schema.pop("$defs", None)  # SecretReference (and its SecretRef), defined once above
    return schema


def render_spec_schema() -> str:
    """The schema as committed: two-space indented JSON and a final newline."""
    return orjson.dumps(spec_schema(), option=orjson.OPT_INDENT_2).decode() + "\n"


def write_spec_schema(directory: Path | str = _DEFAULT_DIRECTORY) -> Path:
    """Write ``spec.schema.json`` into ``directory`` (created if missing); return its path."""
    path = Path(directory) / SPEC_SCHEMA_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_spec_schema(), encoding="utf-8")
    return path


def _main(argv: list[str]) -> int:
    check = "--check" in argv
    directory = Path(next((a for a in argv if not a.startswith("-")), _DEFAULT_DIRECTORY))
    path = directory / SPEC_SCHEMA_FILE
    if check:
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != render_spec_schema():
            sys.stderr.write(f"{path} is stale: run python -m streamcoord.pipelines.schema\n")
            return 1
        return 0
    sys.stdout.write(f"wrote {write_spec_schema(directory)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
