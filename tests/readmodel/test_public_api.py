"""The public surface of ``streamcoord.readmodel``: what ``__all__`` says, and all of it exists."""

from __future__ import annotations

from streamcoord import readmodel


def test_every_exported_name_exists() -> None:
    missing = [name for name in readmodel.__all__ if not hasattr(readmodel, name)]
    assert missing == []


def test_the_api_entry_points_are_exported() -> None:
    wanted = {
        "open_store",
        "project",
        "Store",
        "SqlStore",
        "RunQuery",
        "Page",
        "RunDetail",
        "AuditEntry",
        "DeadLetterEntry",
        "PipelineStats",
        "CursorError",
    }
    assert wanted <= set(readmodel.__all__)


def test_pages_have_a_json_schema_for_the_api() -> None:
    schema = readmodel.Page[readmodel.RunSummary].model_json_schema()
    assert {"items", "next_cursor"} <= set(schema["properties"])
