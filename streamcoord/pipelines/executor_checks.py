"""Checks of the config of executors on the dbt and Airflow workers' topics against their models.

Pure: reads :class:`LoadedSpecs` and returns located :class:`Problem` s, one per invalid field,
so `streamcoord validate` catches a misspelt `selcet` before a worker fails the attempt on it.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import ValidationError

from streamcoord.pipelines.executors import EXECUTOR_CONFIGS
from streamcoord.pipelines.loader import LoadedSpecs, SpecDocument
from streamcoord.pipelines.models import Executor
from streamcoord.pipelines.problem import FieldPath, Problem, format_path

__all__ = ["invalid_executor_configs"]


def invalid_executor_configs(specs: LoadedSpecs) -> Iterator[Problem]:
    """An error for every invalid field of a config whose executor topic has a config model."""
    for document, path, executor in _executors(specs):
        model = EXECUTOR_CONFIGS.get(executor.topic)
        if model is None:
            continue
        try:
            model.model_validate(executor.config)
        except ValidationError as error:
            for detail in error.errors():
                where = (*path, "config", *detail["loc"])
                line, col = document.source.position(where)
                message = f"{detail['msg']} (a {model.__name__} for topic {executor.topic})"
                yield Problem(document.file, line, col, format_path(where), message)


def _executors(specs: LoadedSpecs) -> Iterator[tuple[SpecDocument, FieldPath, Executor]]:
    """Every executor written in ``specs`` (not inherited ones), with its path."""
    for document in specs.documents:
        for pipeline, path in zip(document.spec.pipelines, document.pipeline_paths, strict=True):
            yield document, (*path, "defaults", "executor"), pipeline.defaults.executor
            for index, stage in enumerate(pipeline.stages):
                if stage.executor is not None:
                    yield document, (*path, "stages", index, "executor"), stage.executor
