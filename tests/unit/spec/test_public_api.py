"""The public surface of ``streamcoord.spec`` is what ``__all__`` says, and all of it exists."""

from __future__ import annotations

from streamcoord import spec


def test_every_exported_name_exists() -> None:
    missing = [name for name in spec.__all__ if not hasattr(spec, name)]
    assert missing == []


def test_core_names_are_exported() -> None:
    wanted = {"load_specs", "Problem", "validate_paths", "compile_expression", "compile_template"}
    assert wanted <= set(spec.__all__)
    assert {"Pipeline", "Stage", "SpecFile", "Pool", "Need"} <= set(spec.__all__)
