"""Loading the pipeline specs a coordinator runs: every check, then the compiled catalog."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from streamcoord.core import Catalog
from streamcoord.errors import SpecError
from streamcoord.spec.validation import DEFAULT_TOPICS_FILE, validate_paths

__all__ = ["load_catalog"]


def load_catalog(
    paths: Iterable[Path | str], *, topics_file: Path | str | None = DEFAULT_TOPICS_FILE,
    default_start_timeout_seconds: float | None = None,
) -> Catalog:
    """Load and check specs (as `streamcoord validate` does); any problem stops here, listed.

    ``default_start_timeout_seconds``: see :meth:`Catalog.build` (the coordinator passes its
    setting of that name)."""
    report = validate_paths(paths, topics_file=topics_file)
    if report.problems:
        listing = "\n".join(str(problem) for problem in report.problems)
        raise SpecError(
            f"the specs do not validate:\n{listing}",
            hint="`streamcoord validate PATH...` shows the same list",
        )
    return Catalog.build(
        report.specs.pipelines, report.specs.pools,
        default_start_timeout_seconds=default_start_timeout_seconds,
    )
