"""JSON Schemas of the event types, the topics file and specs records, generated from the models.

``streamcoord topics schemas`` writes them to ``topics/schemas/``; a test fails when the
committed files are stale. Pure: this module returns text, the CLI writes it.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from streamcoord.events.internal import INTERNAL_EVENT_CLASSES
from streamcoord.events.models import OWN_EVENT_CLASSES, CloudEvent, ExternalEvent
from streamcoord.events.specs import SPECS_RECORD_SCHEMA_FILE, SpecsRecord
from streamcoord.events.topics import TopicsFile

__all__ = ["EXTERNAL_SCHEMA_FILE", "TOPICS_SCHEMA_FILE", "render_schemas", "schema_file_name"]

EXTERNAL_SCHEMA_FILE: Final = "cloudevent.schema.json"
TOPICS_SCHEMA_FILE: Final = "topics.schema.json"
_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
# Required on the wire, although the models default specversion so that emitters may omit it.
_REQUIRED_ATTRIBUTES: Final = ["specversion", "id", "source", "type"]


def schema_file_name(event_type: str) -> str:
    """The file an event type's schema lives in, e.g. ``streamcoord.stage.started.schema.json``."""
    return f"{event_type}.schema.json"


def render_schemas() -> dict[str, str]:
    """Every schema file's name and text, in a stable order and format."""
    files = {
        schema_file_name(cls.TYPE): _render(_event_schema(cls))
        for cls in (*OWN_EVENT_CLASSES, *INTERNAL_EVENT_CLASSES)
    }
    files[EXTERNAL_SCHEMA_FILE] = _render(_event_schema(ExternalEvent))
    files[TOPICS_SCHEMA_FILE] = _render(
        {"$schema": _DIALECT, **TopicsFile.model_json_schema(mode="validation")}
    )
    files[SPECS_RECORD_SCHEMA_FILE] = _render(
        {"$schema": _DIALECT, **SpecsRecord.model_json_schema(mode="validation")}
    )
    return files


def _event_schema(cls: type[CloudEvent]) -> dict[str, Any]:
    schema = cls.model_json_schema(mode="validation")
    required = schema.get("required", [])
    schema["required"] = _REQUIRED_ATTRIBUTES + [
        n for n in required if n not in _REQUIRED_ATTRIBUTES
    ]
    return {"$schema": _DIALECT, **schema}


def _render(schema: dict[str, Any]) -> str:
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2).decode() + "\n"
