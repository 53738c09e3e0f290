"""The committed JSON Schemas match the models."""

from __future__ import annotations

from pathlib import Path

import orjson

from streamcoord.events import COORDINATOR_EVENT_TYPES, OWN_EVENT_TYPES
from streamcoord.events.internal import INTERNAL_EVENT_CLASSES
from streamcoord.events.schemas import render_schemas, schema_file_name

SCHEMA_DIR = Path(__file__).parents[3] / "topics" / "schemas"


def test_committed_schemas_are_not_stale() -> None:
    stale = [
        name
        for name, text in render_schemas().items()
        if not (SCHEMA_DIR / name).is_file() or (SCHEMA_DIR / name).read_text() != text
    ]
    assert not stale, f"run `streamcoord topics schemas` and commit: {stale}"


def test_there_is_a_schema_for_every_own_type_and_the_envelope() -> None:
    names = set(render_schemas())
    assert {schema_file_name(t) for t in OWN_EVENT_TYPES} <= names
    assert {"cloudevent.schema.json", "topics.schema.json"} <= names


def test_every_type_only_the_coordinator_produces_has_a_schema() -> None:
    # internal traffic included: no event on any topic is an untyped dict
    names = set(render_schemas())
    assert {schema_file_name(t) for t in COORDINATOR_EVENT_TYPES} <= names
    assert {cls.TYPE for cls in INTERNAL_EVENT_CLASSES} <= COORDINATOR_EVENT_TYPES


def test_event_schemas_require_the_cloudevents_attributes() -> None:
    schema = orjson.loads(render_schemas()["streamcoord.stage.trigger.schema.json"])
    assert schema["required"][:4] == ["specversion", "id", "source", "type"]
    assert "data" in schema["required"]
