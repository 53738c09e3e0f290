"""Load and check spec files (or their texts) in one call: what ``streamcoord validate`` runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from streamcoord.events.topics import PACKAGED_TOPICS_FILE
from streamcoord.pipelines.checks import check_specs
from streamcoord.pipelines.loader import LoadedSpecs, load_specs, parse_specs, read_topic_names
from streamcoord.pipelines.problem import Problem, sorted_problems
from streamcoord.pipelines.secret_checks import literal_secret_warnings

__all__ = ["DEFAULT_TOPICS_FILE", "ValidationReport", "validate_paths", "validate_texts"]

#: Where topics are declared: the file shipped in the package, whatever the working directory.
DEFAULT_TOPICS_FILE = PACKAGED_TOPICS_FILE


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The loaded specs and every problem, from loading and from the semantic checks.

    ``problems`` are errors; ``warnings`` (values that look like literal secrets) do not stop
    the specs from loading.
    """

    specs: LoadedSpecs
    problems: tuple[Problem, ...]
    topics_checked: bool
    warnings: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.problems


def validate_paths(
    paths: Iterable[Path | str], *, topics_file: Path | str | None = DEFAULT_TOPICS_FILE
) -> ValidationReport:
    """Load every spec under ``paths`` and check it; topics are checked if the file exists.

    Raises :class:`~streamcoord.errors.ConfigError` for a path that does not exist.
    """
    specs = load_specs(paths)
    topics = read_topic_names(topics_file) if topics_file is not None else None
    problems = sorted_problems((*specs.problems, *check_specs(specs, topics)))
    warnings = sorted_problems(literal_secret_warnings(specs))
    return ValidationReport(specs, problems, topics is not None, warnings)


def validate_texts(
    files: Mapping[str, str], *, topics: frozenset[str] | None = None
) -> ValidationReport:
    """Check spec files given as texts by name (a published specs record), in the given order.

    The same checks as :func:`validate_paths`; problems name the files as given. Pure: the
    declared ``topics`` names are passed in (``None`` skips the topic check).
    """
    specs = LoadedSpecs()
    for name, text in files.items():
        specs = specs.merged(parse_specs(text, name))
    problems = sorted_problems((*specs.problems, *check_specs(specs, topics)))
    warnings = sorted_problems(literal_secret_warnings(specs))
    return ValidationReport(specs, problems, topics is not None, warnings)
