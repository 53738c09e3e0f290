"""Checks of policies that their schema cannot express, located in their files.

Pure: reads :class:`LoadedSpecs` and returns :class:`Problem` s: each policy's own findings
(:func:`~streamcoord.spec.policies.policy_findings`) and names declared twice.
"""

from __future__ import annotations

from collections.abc import Iterator

from streamcoord.spec.loader import LoadedSpecs
from streamcoord.spec.policies import policy_findings
from streamcoord.spec.problem import FieldPath, Problem, format_path

__all__ = ["policy_problems"]


def policy_problems(specs: LoadedSpecs) -> Iterator[Problem]:
    """Every problem of every valid policy in ``specs``."""
    seen: set[str] = set()
    for document in specs.documents:
        for policy, path in zip(document.spec.policies, document.policy_paths, strict=True):
            findings: list[tuple[FieldPath, str, str]] = []
            if policy.name in seen:
                findings.append((("name",), f"policy {policy.name!r} is defined more than once",
                                 "give every policy its own name"))
            seen.add(policy.name)
            findings += [((*f.path,), f.message, f.hint) for f in policy_findings(policy)]
            for relative, message, hint in findings:
                where = (*path, *relative)
                line, col = document.source.position(where)
                yield Problem(document.file, line, col, format_path(where), message, hint)
