"""Policies compiled for the catalog, and the verdict of each on one event.

Everything here is a function of the policy and the event: a signature check is computation
over the event's bytes, so a replay of the internal topic reaches the same verdicts.
:mod:`streamcoord.core._enforcement` applies the verdicts in ``decide``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from streamcoord.core._expressions import Compiled, compile_expression
from streamcoord.errors import SpecError
from streamcoord.events.models import CloudEvent
from streamcoord.events.signing import (
    PRINCIPAL_ATTRIBUTE,
    parse_public_key,
    signature_of,
    verify_event,
)
from streamcoord.pipelines.models import Pipeline
from streamcoord.pipelines.policies import (
    GUARD_VARIABLES,
    ContractPolicy,
    EmitPolicy,
    GuardPolicy,
    Policy,
    QuotaPolicy,
    policy_findings,
    window_length,
)

__all__ = [
    "CompiledContract",
    "CompiledEmit",
    "CompiledGuard",
    "CompiledPolicies",
    "CompiledQuota",
    "compile_policies",
    "contract_violation",
    "emit_violation",
]


@dataclass(frozen=True, slots=True)
class CompiledEmit:
    name: str
    enforce: bool
    sources: tuple[str, ...]
    principals: frozenset[str]
    require_signature: bool
    keys: Mapping[str, Ed25519PublicKey]


@dataclass(frozen=True, slots=True)
class CompiledContract:
    name: str
    enforce: bool
    validator: Draft202012Validator


@dataclass(frozen=True, slots=True)
class CompiledGuard:
    name: str
    enforce: bool
    condition: Compiled
    recheck_seconds: float | None


@dataclass(frozen=True, slots=True)
class CompiledQuota:
    name: str
    enforce: bool
    max_runs: int
    window: timedelta
    over_quota: str  # queue | reject
    window_text: str  # as written, for reasons


@dataclass(frozen=True, slots=True)
class CompiledPolicies:
    """The policies of a spec version: emit rules and contracts by the CloudEvents type they
    govern, guards by the (pipeline, stage) they hold, quotas by the pipeline they limit."""

    emit: Mapping[str, tuple[CompiledEmit, ...]] = field(default_factory=dict)
    contracts: Mapping[str, tuple[CompiledContract, ...]] = field(default_factory=dict)
    guards: Mapping[tuple[str, str], tuple[CompiledGuard, ...]] = field(default_factory=dict)
    quotas: Mapping[str, tuple[CompiledQuota, ...]] = field(default_factory=dict)


def compile_policies(
    policies: Sequence[Policy], pipelines: Sequence[Pipeline] = ()
) -> CompiledPolicies:
    """Check and index ``policies`` (guards against ``pipelines``); raises :class:`SpecError`
    listing every problem (the checks `streamcoord validate` runs, unlocated)."""
    names = [p.name for p in policies]
    problems = [
        f"policy {n!r} is defined more than once"
        for n in sorted({n for n in names if names.count(n) > 1})
    ]
    problems += [
        f"policy {p.name!r} {'.'.join(map(str, f.path))}: {f.message}"
        for p in policies
        for f in policy_findings(p)
    ]
    stages = {p.name: {s.name for s in p.stages} for p in pipelines}
    problems += [
        f"policy {p.name!r}: pipeline {p.pipeline!r} has no stage {stage!r}"
        if p.pipeline in stages
        else f"policy {p.name!r}: unknown pipeline {p.pipeline!r}"
        for p in policies
        if isinstance(p, GuardPolicy)
        for stage in p.stages
        if stage not in stages.get(p.pipeline, ())
    ]
    problems += [
        f"policy {p.name!r}: unknown pipeline {p.pipeline!r}"
        for p in policies
        if isinstance(p, QuotaPolicy) and p.pipeline not in stages
    ]
    if problems:
        raise SpecError(
            "invalid policies: " + "; ".join(problems),
            hint="`streamcoord validate` locates them in the files",
        )
    emit: dict[str, list[CompiledEmit]] = {}
    contracts: dict[str, list[CompiledContract]] = {}
    guards: dict[tuple[str, str], list[CompiledGuard]] = {}
    quotas: dict[str, list[CompiledQuota]] = {}
    for policy in policies:
        if isinstance(policy, QuotaPolicy):
            quotas.setdefault(policy.pipeline, []).append(_quota(policy))
        elif isinstance(policy, EmitPolicy):
            compiled = _emit(policy)
            for type_ in dict.fromkeys(policy.types):
                emit.setdefault(type_, []).append(compiled)
        elif isinstance(policy, GuardPolicy):
            guard = _guard(policy)
            for stage in dict.fromkeys(policy.stages):
                guards.setdefault((policy.pipeline, stage), []).append(guard)
        else:
            contracts.setdefault(policy.type, []).append(_contract(policy))
    return CompiledPolicies(
        {k: tuple(v) for k, v in emit.items()},
        {k: tuple(v) for k, v in contracts.items()},
        {k: tuple(v) for k, v in guards.items()},
        {k: tuple(v) for k, v in quotas.items()},
    )


def _quota(policy: QuotaPolicy) -> CompiledQuota:
    return CompiledQuota(
        policy.name,
        policy.enforce,
        policy.max_runs,
        window_length(policy.window),
        policy.over_quota,
        policy.window,
    )


def _guard(policy: GuardPolicy) -> CompiledGuard:
    condition = compile_expression(
        policy.condition, f"policy {policy.name!r} condition", GUARD_VARIABLES
    )
    return CompiledGuard(policy.name, policy.enforce, condition, policy.recheck_seconds)


def _emit(policy: EmitPolicy) -> CompiledEmit:
    return CompiledEmit(
        policy.name,
        policy.enforce,
        tuple(policy.sources),
        frozenset(policy.principals),
        policy.require_signature,
        {principal: parse_public_key(text) for principal, text in policy.keys.items()},
    )


def _contract(policy: ContractPolicy) -> CompiledContract:
    return CompiledContract(policy.name, policy.enforce, Draft202012Validator(policy.data_schema))


def emit_violation(policy: CompiledEmit, event: CloudEvent) -> Iterator[tuple[str, str]]:
    """The first rule of ``policy`` the event breaks: (code, reason); nothing if none."""
    if policy.sources and not any(fnmatch.fnmatchcase(event.source, g) for g in policy.sources):
        yield (
            "emit_source_denied",
            (
                f"source {event.source!r} may not send {event.type} (allowed: "
                f"{', '.join(policy.sources)})"
            ),
        )
        return
    claimed = (event.model_extra or {}).get(PRINCIPAL_ATTRIBUTE)
    principal = claimed if isinstance(claimed, str) else None
    signed = signature_of(event) is not None
    key = None if principal is None else policy.keys.get(principal)
    if policy.require_signature and not signed:
        yield "emit_unsigned", f"{event.type} must be signed by its sender (scsignature)"
    elif policy.require_signature and key is None:
        yield (
            "emit_unknown_signer",
            (
                f"no key is registered for principal {principal!r}"
                if principal is not None
                else "a signed event must name its principal (scprincipal)"
            ),
        )
    elif signed and key is not None and not verify_event(event, key):
        yield (
            "emit_bad_signature",
            (
                f"the signature does not verify with the key of {principal!r}: the event was"
                " altered or signed with another key"
            ),
        )
    elif policy.principals and principal not in policy.principals:
        who = "no principal" if principal is None else f"principal {principal!r}"
        yield (
            "emit_principal_denied",
            (f"{who} may not send {event.type} (allowed: {', '.join(sorted(policy.principals))})"),
        )


def contract_violation(contract: CompiledContract, event: CloudEvent) -> Iterator[tuple[str, str]]:
    data: Any = event.data
    if isinstance(data, bytes):
        yield "contract_violated", "the data is binary, not JSON"
        return
    error = best_match(contract.validator.iter_errors(data))
    if error is not None:
        where = "data" + "".join(f"[{p!r}]" for p in error.absolute_path)
        yield "contract_violated", f"{where}: {error.message}"
