"""Policies: rules declared beside the pipelines that the core enforces at decision time.

A spec file's ``policies:`` list holds named policies of these kinds:

- ``emit``: who may send events of some types (external ones, or streamcoord's own commands such
  as ``streamcoord.run.cancel``): the sources (globs) and principals allowed, and whether the
  principal must be proven by an Ed25519 signature with a key registered here;
- ``contract``: a JSON Schema that the data of an event type must satisfy;
- ``guard``: a CEL condition that must hold before stages of a pipeline are triggered; while it
  is false the stage is held (it waits, re-checked whenever its run is settled again and every
  ``recheck_seconds``), and ``streamcoord explain`` names the guard;
- ``quota``: at most ``max_runs`` runs of a pipeline start in any sliding ``window`` (``1h``,
  ``1d``); a run beyond it is queued (and started when the window frees) or rejected.

Each policy has ``enforce`` (default true); ``enforce: false`` is a dry run: what the policy
would reject is reported (decision records, metrics) and then decided as if it were allowed.
Policies are part of the spec version: ``streamcoord specs apply`` publishes them with the
pipelines, and a replay decides with the same ones. :func:`policy_findings` holds the checks
the schema cannot express; ``streamcoord validate`` locates them in the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import Field, JsonValue

from streamcoord.events.models import COORDINATOR_EVENT_TYPES
from streamcoord.events.signing import parse_public_key
from streamcoord.pipelines._base import Expression, Name, SpecModel
from streamcoord.pipelines.expressions import (
    CONDITION_VARIABLES,
    ExpressionError,
    compile_expression,
)
from streamcoord.pipelines.triggers.kind import Finding

__all__ = [
    "GUARD_VARIABLES",
    "WINDOW_PATTERN",
    "ContractPolicy",
    "EmitPolicy",
    "GuardPolicy",
    "Policy",
    "QuotaPolicy",
    "policy_findings",
    "window_length",
]

#: Names a guard's condition sees: a stage condition's, and ``now`` (the time of the event being
#: decided, RFC 3339), ``run`` (run_id, run_key, status and each stage's status, attempt and
#: outputs) and ``stage`` (the name of the stage it holds).
GUARD_VARIABLES: frozenset[str] = CONDITION_VARIABLES | {"now", "run", "stage"}

_ENFORCE = Field(True, description="false: a dry run; violations are reported, never rejected.")


class EmitPolicy(SpecModel):
    """Who may send events of ``types``: others are rejected before anything is decided."""

    kind: Literal["emit"] = "emit"
    name: Name
    description: str = ""
    enforce: bool = _ENFORCE
    types: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1, description="CloudEvents types the policy governs."
    )
    sources: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="Globs over the CloudEvents source ('erp/*'); empty: any source.",
    )
    principals: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="Who may send (the `scprincipal` attribute); empty: anyone, or anyone"
        " with a key in `keys` when `require_signature` is set.",
    )
    require_signature: bool = Field(
        False,
        description="true: the principal must be proven by an Ed25519 signature (`scsignature`)"
        " by its key in `keys`. false: the principal stamped by the API or ingest (the only"
        " writers the events topic's ACLs admit) is trusted; a signature present is checked.",
    )
    keys: dict[Annotated[str, Field(min_length=1)], str] = Field(
        default_factory=dict,
        description="Public keys by principal: base64 of the Ed25519 key's 32 raw bytes.",
    )


class ContractPolicy(SpecModel):
    """A JSON Schema the data of ``type`` must satisfy; a violating event starts nothing."""

    kind: Literal["contract"] = "contract"
    name: Name
    description: str = ""
    enforce: bool = _ENFORCE
    type: str = Field(min_length=1, description="The CloudEvents type whose data it governs.")
    data_schema: dict[str, JsonValue] = Field(
        alias="schema", description="JSON Schema (draft 2020-12) of the event's data."
    )


class GuardPolicy(SpecModel):
    """A condition that must hold before ``stages`` of ``pipeline`` are triggered."""

    kind: Literal["guard"] = "guard"
    name: Name
    description: str = ""
    enforce: bool = _ENFORCE
    pipeline: Name
    stages: list[Name] = Field(min_length=1, description="The stages it guards.")
    condition: Expression = Field(
        description="CEL over event, run_key, params, pipeline, upstream, now, run and stage;"
        " the stage is held while it is not true. Example, no deploys on weekends by the"
        " trigger's time: `timestamp(event.time).getDayOfWeek() in [1, 2, 3, 4, 5]`."
    )
    recheck_seconds: float | None = Field(
        None,
        gt=0,
        description="While the stage is held, check again this often (a timer); none: only when"
        " the run changes.",
    )


#: How a quota's window is written: ``1h``, ``30m``, ``1d``, ``1h30m``.
WINDOW_PATTERN = r"^([0-9]+[smhd])+$"
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def window_length(text: str) -> timedelta:
    """The length of a window written as ``1h``, ``30m``, ``1d``, ``1h30m`` (s, m, h, d)."""
    seconds = sum(
        int(amount) * _UNIT_SECONDS[unit] for amount, unit in re.findall(r"([0-9]+)([smhd])", text)
    )
    return timedelta(seconds=seconds)


class QuotaPolicy(SpecModel):
    """At most ``max_runs`` runs of ``pipeline`` start in any sliding ``window``."""

    kind: Literal["quota"] = "quota"
    name: Name
    description: str = ""
    enforce: bool = _ENFORCE
    pipeline: Name
    max_runs: int = Field(ge=1, description="Runs that may start in any one window.")
    window: str = Field(
        pattern=WINDOW_PATTERN,
        description="The sliding window, as a duration: `1h`, `1d`, `30m`, `1h30m` (s, m, h, d)."
        " A start counts until one window after it (by the times of the decided events).",
    )
    over_quota: Literal["queue", "reject"] = Field(
        "queue",
        description="queue: the run waits (status queued) and starts, in order, when the window"
        " frees; reject: the run is skipped and the event that asked for it is dead-lettered.",
    )


Policy = Annotated[
    EmitPolicy | ContractPolicy | GuardPolicy | QuotaPolicy, Field(discriminator="kind")
]


def policy_findings(
    policy: EmitPolicy | ContractPolicy | GuardPolicy | QuotaPolicy,
) -> Iterator[Finding]:
    """What is wrong with ``policy`` beyond its schema; paths relative to the policy. Whether a
    guard's or quota's pipeline (and stages) exist is checked with the pipelines (see
    ``policy_checks``)."""
    if isinstance(policy, EmitPolicy):
        yield from _emit_findings(policy)
    elif isinstance(policy, QuotaPolicy):
        if window_length(policy.window) <= timedelta(0):
            yield Finding(("window",), "the window is empty", "give its length, e.g. 1h or 1d")
    elif isinstance(policy, GuardPolicy):
        try:
            compile_expression(policy.condition, variables=GUARD_VARIABLES)
        except ExpressionError as exc:
            yield Finding(("condition",), f"{exc.reason} (at {exc.line}:{exc.column})", exc.hint)
    else:
        yield from _reserved(("type",), policy.type)
        try:
            Draft202012Validator.check_schema(policy.data_schema)
        except SchemaError as exc:
            path = ("schema", *exc.path)
            yield Finding(
                path,
                f"not a valid JSON Schema: {exc.message}",
                "see https://json-schema.org/draft/2020-12",
            )


def _emit_findings(policy: EmitPolicy) -> Iterator[Finding]:
    for index, type_ in enumerate(policy.types):
        yield from _reserved(("types", index), type_)
    for principal, text in policy.keys.items():
        try:
            parse_public_key(text)
        except ValueError as exc:
            yield Finding(
                ("keys", principal),
                f"not an Ed25519 public key: {exc}",
                "write the base64 of the key's 32 raw bytes",
            )
    unkeyed = [p for p in policy.principals if p not in policy.keys]
    if policy.require_signature and not policy.keys:
        yield Finding(
            ("require_signature",),
            "a signature is required but no key is registered",
            "register each principal's public key under `keys`",
        )
    elif policy.require_signature and unkeyed:
        yield Finding(
            ("principals",),
            f"no key for {', '.join(map(repr, unkeyed))}, whose events could never be verified",
            "add their public keys under `keys`",
        )


def _reserved(path: tuple[str | int, ...], type_: str) -> Iterator[Finding]:
    if type_ in COORDINATOR_EVENT_TYPES:
        yield Finding(
            path,
            f"{type_} is a coordinator's own message: only coordinators send it",
            "govern the types other systems and people send",
        )
