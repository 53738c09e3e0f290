"""Checks of policies that their schema cannot express, located in their files.

Pure: reads :class:`LoadedSpecs` and returns :class:`Problem` s: each policy's own findings
(:func:`~streamcoord.pipelines.policies.policy_findings`), names declared twice, and guards of
pipelines or stages that do not exist, and quotas of pipelines that do not exist.
"""

from __future__ import annotations

from collections.abc import Iterator

from streamcoord.pipelines.loader import LoadedSpecs
from streamcoord.pipelines.models import Pipeline
from streamcoord.pipelines.policies import GuardPolicy, Policy, QuotaPolicy, policy_findings
from streamcoord.pipelines.problem import FieldPath, Problem, format_path
from streamcoord.pipelines.triggers.kind import Finding, did_you_mean

__all__ = ["policy_problems"]


def policy_problems(specs: LoadedSpecs) -> Iterator[Problem]:
    """Every problem of every valid policy in ``specs``."""
    seen: set[str] = set()
    pipelines = {p.name: p for p in specs.pipelines}
    for document in specs.documents:
        for policy, path in zip(document.spec.policies, document.policy_paths, strict=True):
            findings: list[tuple[FieldPath, str, str]] = []
            if policy.name in seen:
                findings.append(
                    (
                        ("name",),
                        f"policy {policy.name!r} is defined more than once",
                        "give every policy its own name",
                    )
                )
            seen.add(policy.name)
            found = [
                *policy_findings(policy),
                *_guarded(policy, pipelines, specs.unchecked_pipelines),
            ]
            findings += [((*f.path,), f.message, f.hint) for f in found]
            for relative, message, hint in findings:
                where = (*path, *relative)
                line, col = document.source.position(where)
                yield Problem(document.file, line, col, format_path(where), message, hint)


def _guarded(
    policy: Policy, pipelines: dict[str, Pipeline], unchecked: frozenset[str]
) -> Iterator[Finding]:
    """A guard's pipeline and stages, a quota's pipeline, must exist (one that failed validation
    is not reported)."""
    if not isinstance(policy, GuardPolicy | QuotaPolicy) or policy.pipeline in unchecked:
        return
    pipeline = pipelines.get(policy.pipeline)
    if pipeline is None:
        yield Finding(
            ("pipeline",),
            f"unknown pipeline {policy.pipeline!r}",
            did_you_mean(policy.pipeline, pipelines),
        )
        return
    if isinstance(policy, QuotaPolicy):
        return
    names = [stage.name for stage in pipeline.stages]
    for index, stage in enumerate(policy.stages):
        if stage not in names:
            yield Finding(
                ("stages", index),
                f"pipeline {pipeline.name!r} has no stage {stage!r}",
                did_you_mean(stage, names),
            )
