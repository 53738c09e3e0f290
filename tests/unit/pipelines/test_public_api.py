"""``streamcoord.pipelines`` exports what ``__all__`` says, and all of it exists."""

from __future__ import annotations

from streamcoord import pipelines


def test_every_exported_name_exists() -> None:
    missing = [name for name in pipelines.__all__ if not hasattr(pipelines, name)]
    assert missing == []


def test_core_names_are_exported() -> None:
    wanted = {"load_specs", "Problem", "validate_paths", "compile_expression", "compile_template"}
    assert wanted <= set(pipelines.__all__)
    assert {"Pipeline", "Stage", "SpecFile", "Pool", "Need"} <= set(pipelines.__all__)
