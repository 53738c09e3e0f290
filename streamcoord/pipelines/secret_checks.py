"""Checks of secrets in executor config: malformed references (errors) and values that look
like secrets written in plain text (warnings, since a heuristic can be wrong).

Pure: both read :class:`LoadedSpecs` and return located :class:`Problem` s.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import JsonValue

from streamcoord.pipelines.loader import LoadedSpecs, SpecDocument
from streamcoord.pipelines.problem import FieldPath, Problem, Severity, format_path
from streamcoord.pipelines.secrets import SecretRefError, literal_secrets, secret_ref, secret_refs

__all__ = ["invalid_secret_refs", "literal_secret_warnings"]

_REFERENCE_HINT = (
    "write {secret: {env: NAME}} or {secret: {file: /path}} and give the value to the"
    " workers (docs/edges.md#secrets)"
)


def invalid_secret_refs(specs: LoadedSpecs) -> Iterator[Problem]:
    """An error for every mapping written as a secret reference that is not a valid one."""
    for document, path, config in _configs(specs):
        for ref_path, value in secret_refs(config, path):
            try:
                secret_ref(value)
            except SecretRefError as error:
                yield _problem(document, ref_path, str(error))


def literal_secret_warnings(specs: LoadedSpecs) -> Iterator[Problem]:
    """A warning for every executor config value that looks like a literal secret."""
    for document, path, config in _configs(specs):
        for value_path, why in literal_secrets(config, path):
            message = f"{why}: it would travel in plain text in every trigger on Kafka"
            yield _problem(document, value_path, message, _REFERENCE_HINT, warning=True)


def _configs(specs: LoadedSpecs) -> Iterator[tuple[SpecDocument, FieldPath, JsonValue]]:
    """Every executor config written in ``specs``, with its path."""
    for document in specs.documents:
        for pipeline, path in zip(document.spec.pipelines, document.pipeline_paths, strict=True):
            yield (
                document,
                (*path, "defaults", "executor", "config"),
                pipeline.defaults.executor.config,
            )
            for index, stage in enumerate(pipeline.stages):
                if stage.executor is not None:
                    where = (*path, "stages", index, "executor", "config")
                    yield document, where, stage.executor.config


def _problem(
    document: SpecDocument, path: FieldPath, message: str, hint: str = "", *, warning: bool = False
) -> Problem:
    line, col = document.source.position(path)
    severity: Severity = "warning" if warning else "error"
    return Problem(document.file, line, col, format_path(path), message, hint, severity)
