"""Policies at decision time: emit rules (sources, principals, Ed25519 signatures) and data
contracts reject an event before it starts, feeds or changes anything; guards hold stages back;
a dry run reports only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import TypeAdapter

from streamcoord.core import Catalog, CoordinatorState, Publish, Step, decide, explain
from streamcoord.core._audit import CHAIN_KEY
from streamcoord.core._step import DECISIONS_TOPIC
from streamcoord.core.replay import replay
from streamcoord.errors import SpecError
from streamcoord.events.models import (
    CloudEvent,
    DecisionRecord,
    ExternalEvent,
    PipelinePause,
    RunCancel,
    StageFailed,
    StageSucceeded,
    StageTrigger,
)
from streamcoord.events.signing import public_key_text, sign_event
from streamcoord.pipelines.loader import parse_specs
from streamcoord.pipelines.models import Pipeline, Policy

T0 = datetime(2026, 1, 3, tzinfo=UTC)  # a Saturday
ALICE = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
MALLORY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
_POLICY: TypeAdapter[Policy] = TypeAdapter(Policy)

ORDER_SCHEMA = {
    "type": "object",
    "required": ["day", "amount"],
    "properties": {"day": {"type": "string"}, "amount": {"type": "number", "minimum": 0}},
}


def _pipelines() -> list[Pipeline]:
    return [
        Pipeline.model_validate(
            {
                "name": "orders",
                "run_key": "event.data.day",
                "triggers": [{"kind": "event", "type": "order.placed"}, {"kind": "manual"}],
                "stages": [{"name": "load"}],
            }
        ),
        Pipeline.model_validate(
            {  # two triggers of one type: one run audited, once
                "name": "audit",
                "run_key": "event.data.day",
                "triggers": [
                    {"kind": "event", "type": "order.placed"},
                    {"kind": "event", "type": "order.placed", "source": "erp*"},
                ],
                "stages": [{"name": "check"}],
            }
        ),
        Pipeline.model_validate(
            {  # orders have no region: no run of this one is audited
                "name": "by_region",
                "run_key": "event.data.region",
                "triggers": [
                    {"kind": "event", "type": "order.placed", "filter": "has(event.data.region)"}
                ],
                "stages": [{"name": "sum"}],
            }
        ),
    ]


def _catalog(*policies: dict[str, Any]) -> Catalog:
    return Catalog.build(_pipelines(), policies=[_POLICY.validate_python(p) for p in policies])


EMIT = {
    "kind": "emit",
    "name": "orders-from-erp",
    "types": ["order.placed", "order.placed"],
    "sources": ["erp/*"],
    "principals": ["alice"],
    "require_signature": True,
    "keys": {"alice": public_key_text(ALICE), "mallory": public_key_text(MALLORY)},
}
CONTRACT = {
    "kind": "contract",
    "name": "order-shape",
    "type": "order.placed",
    "schema": ORDER_SCHEMA,
}


def _order(source: str = "erp/eu", data: Any = None, **extra: Any) -> CloudEvent:
    data = {"day": "2026-01-03", "amount": 5} if data is None else data
    return ExternalEvent(id="o1", source=source, type="order.placed", data=data, **extra)


def _decide(catalog: Catalog, event: CloudEvent) -> Step:
    return decide(catalog, CoordinatorState.empty(), event, T0)


def _triggered(step: Step) -> list[str]:
    return [
        f"{c.event.data.run_id}.{c.event.data.stage}"
        for c in step.commands
        if isinstance(c, Publish) and isinstance(c.event, StageTrigger)
    ]


def _decisions(step: Step) -> list[tuple[str, str, str]]:
    return [
        (c.event.data.run_id, c.event.data.action, c.event.data.reason)
        for c in step.commands
        if isinstance(c, Publish)
        and c.topic == DECISIONS_TOPIC
        and isinstance(c.event, DecisionRecord)
    ]


def test_a_signed_event_from_an_allowed_source_and_principal_is_decided() -> None:
    step = _decide(_catalog(EMIT, CONTRACT), sign_event(_order(), ALICE, "alice"))
    assert step.rejection is None
    assert step.violations == ()
    assert _triggered(step) == ["orders/2026-01-03.load", "audit/2026-01-03.check"]


@pytest.mark.parametrize(
    ("event", "code", "words"),
    [
        (_order(source="web/shop"), "emit_source_denied", "source 'web/shop' may not send"),
        (_order(scprincipal="alice"), "emit_unsigned", "must be signed"),
        (sign_event(_order(), ALICE), "emit_unknown_signer", "must name its principal"),
        (
            sign_event(_order(), ALICE, "bob"),
            "emit_unknown_signer",
            "no key is registered for principal 'bob'",
        ),
        (sign_event(_order(), MALLORY, "alice"), "emit_bad_signature", "does not verify"),
        (
            sign_event(_order(), ALICE, "alice").model_copy(
                update={"data": {"day": "2026-01-03", "amount": 9}}
            ),
            "emit_bad_signature",
            "altered",
        ),
        (_order(scprincipal="alice", scsignature="not base64!"), "emit_bad_signature", "altered"),
        (
            sign_event(_order(), MALLORY, "mallory"),
            "emit_principal_denied",
            "principal 'mallory' may not send order.placed",
        ),
    ],
    ids=[
        "source",
        "unsigned",
        "no-principal",
        "unknown-signer",
        "wrong-key",
        "altered",
        "garbage-signature",
        "principal-not-allowed",
    ],
)
def test_an_event_the_emit_policy_does_not_allow_starts_nothing(
    event: CloudEvent, code: str, words: str
) -> None:
    step = _decide(_catalog(EMIT), event)
    assert step.rejection is not None
    assert (step.rejection.code, step.rejection.policy) == (code, "orders-from-erp")
    assert words in step.rejection.reason
    assert _triggered(step) == []
    assert step.changed_keys == (CHAIN_KEY,)  # only the audit chain: the rejection's record
    # the verdict is in the audit of each run the event would have started (once per run)
    assert [(run, action) for run, action, _ in _decisions(step)] == [
        ("orders/2026-01-03", "rejected"),
        ("audit/2026-01-03", "rejected"),
    ]
    assert all(f"policy orders-from-erp: {code}" in reason for *_, reason in _decisions(step))


def test_without_a_required_signature_the_stamped_principal_is_trusted() -> None:
    policy = {**EMIT, "require_signature": False, "keys": {"mallory": public_key_text(MALLORY)}}
    catalog = _catalog(policy)
    assert _decide(catalog, _order(scprincipal="alice")).rejection is None
    # a signature by a principal with no key here is not checked; one with a key is
    assert _decide(catalog, sign_event(_order(), ALICE, "alice")).rejection is None
    forged = sign_event(_order(), ALICE, "mallory")
    assert _rejected(_decide(catalog, forged)) == "emit_bad_signature"
    assert _rejected(_decide(catalog, _order())) == "emit_principal_denied"
    anyone = _catalog({"kind": "emit", "name": "anyone", "types": ["order.placed"]})
    assert _decide(anyone, _order(source="web")).rejection is None


def _rejected(step: Step) -> str | None:
    return None if step.rejection is None else step.rejection.code


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"day": "2026-01-03"}, "data: 'amount' is a required property"),
        ({"day": "2026-01-03", "amount": -1}, "data['amount']: -1 is less than the minimum of 0"),
        (b"\x00binary", "the data is binary, not JSON"),
    ],
)
def test_data_that_breaks_its_contract_is_rejected_before_it_starts_a_run(
    data: Any, words: str
) -> None:
    step = _decide(_catalog(CONTRACT), _order(data=data))
    assert step.rejection is not None
    assert (step.rejection.code, step.rejection.policy) == ("contract_violated", "order-shape")
    assert words in step.rejection.reason
    assert _triggered(step) == []


def test_a_dry_run_reports_what_it_would_reject_and_decides_the_event() -> None:
    catalog = _catalog({**EMIT, "enforce": False}, {**CONTRACT, "enforce": False})
    step = _decide(catalog, _order(data={"day": "2026-01-03", "amount": -1}))
    assert step.rejection is None
    assert [(v.policy, v.code, v.enforced) for v in step.violations] == [
        ("orders-from-erp", "emit_unsigned", False),
        ("order-shape", "contract_violated", False),
    ]
    assert _triggered(step) == ["orders/2026-01-03.load", "audit/2026-01-03.check"]
    assert [d[:2] for d in _decisions(step) if d[1] == "would_reject"] == [
        ("orders/2026-01-03", "would_reject"),
        ("audit/2026-01-03", "would_reject"),
    ] * 2


def test_streamcoord_commands_are_governed_and_audited_on_the_run_or_pipeline_they_name() -> None:
    ops = {
        "kind": "emit",
        "name": "ops",
        "sources": ["cli/*"],
        "types": [
            "streamcoord.run.cancel",
            "streamcoord.pipeline.pause",
            "streamcoord.run.requested",
        ],
    }
    catalog = _catalog(ops)
    cancel = RunCancel(id="c", source="web", data={"run_id": "orders/2026-01-03"})
    pause = PipelinePause(id="p", source="web", data={"pipeline": "orders"})
    odd = CloudEvent(id="r", source="web", type="streamcoord.run.requested", data=["x"])
    for event, run in [
        (cancel, "orders/2026-01-03"),
        (pause, "orders"),
        (odd, "streamcoord.run.requested"),
    ]:
        step = _decide(catalog, event)
        assert _rejected(step) == "emit_source_denied"
        assert [d[:2] for d in _decisions(step)] == [(run, "rejected")]


def test_an_unaudited_event_type_and_no_policies_change_nothing() -> None:
    catalog = _catalog(
        {
            "kind": "contract",
            "name": "other",
            "type": "nobody.listens",
            "schema": {"type": "object"},
        }
    )
    step = _decide(catalog, CloudEvent(id="n", source="s", type="nobody.listens", data=1))
    assert _rejected(step) == "contract_violated"
    assert _decisions(step) == []
    assert _decide(_catalog(), _order(source="anyone")).rejection is None


def test_invalid_policies_do_not_build_a_catalog() -> None:
    with pytest.raises(SpecError, match="policy 'order-shape' is defined more than once"):
        _catalog(CONTRACT, CONTRACT)
    with pytest.raises(SpecError, match=r"policy 'bad' schema\.type: not a valid JSON Schema"):
        _catalog({**CONTRACT, "name": "bad", "schema": {"type": "objectx"}})


def test_policies_are_part_of_the_spec_version() -> None:
    plain, with_contract = _catalog(), _catalog(CONTRACT)
    assert plain.version == Catalog.build(_pipelines()).version  # none: as before policies
    assert with_contract.version != plain.version
    dry = _catalog({**CONTRACT, "enforce": False})
    assert dry.version not in {plain.version, with_contract.version}


RELEASE = """\
pipelines:
  - name: release
    run_key: event.data.day
    triggers: [{kind: event, type: build.done}]
    stages:
      - {name: quality_check}
      - {name: deploy, needs: [quality_check], trigger_rule: all_done}
policies:
  - kind: guard
    name: quality-first
    pipeline: release
    stages: [deploy]
    condition: run.stages.quality_check.status == 'succeeded'
  - kind: guard
    name: no-weekend-deploys
    pipeline: release
    stages: [deploy, deploy]
    condition: timestamp(now).getDayOfWeek() in [1, 2, 3, 4, 5]
    recheck_seconds: 21600
  - kind: guard
    name: audit-trail
    enforce: false
    pipeline: release
    stages: [deploy]
    condition: has(params.ticket)
"""


def _release(*policies_off: str) -> Catalog:
    loaded = parse_specs(RELEASE, "release.yaml")
    assert not loaded.problems
    kept = [p for p in loaded.policies if p.name not in policies_off]
    return Catalog.build(loaded.pipelines, policies=kept)


def _build(day: str) -> CloudEvent:
    return ExternalEvent(id=f"b-{day}", source="ci", type="build.done", data={"day": day})


def _qc(status: str, day: str) -> CloudEvent:
    ref = {"run_id": f"release/{day}", "stage": "quality_check", "attempt": 1}
    if status == "succeeded":
        return StageSucceeded(id=f"qc-{day}", source="x", data=ref)
    return StageFailed(id=f"qc-{day}", source="x", data={**ref, "retryable": False})


def _replay(catalog: Catalog, timed: list[tuple[datetime, CloudEvent]]) -> list[Any]:
    return replay(catalog, timed).records


def _deploys(records: list[Any]) -> list[tuple[str, str]]:
    return [
        (r.timestamp.strftime("%a %H:%M"), c.event.data.run_id)
        for r in records
        for c in r.step.commands
        if isinstance(c, Publish)
        and isinstance(c.event, StageTrigger)
        and c.event.data.stage == "deploy"
    ]


def _held(records: list[Any]) -> list[tuple[str, str]]:
    return [
        (c.event.data.action, c.event.data.reason.split(":")[0])
        for r in records
        for c in r.step.commands
        if isinstance(c, Publish)
        and isinstance(c.event, DecisionRecord)
        and c.event.data.action in {"held", "would_hold"}
    ]


MONDAY = datetime(2026, 1, 5, 9, tzinfo=UTC)
SATURDAY = datetime(2026, 1, 3, 9, tzinfo=UTC)


def test_a_guard_on_the_upstream_outcome_holds_the_stage_and_explain_names_it() -> None:
    catalog = _release("no-weekend-deploys")
    records = _replay(
        catalog,
        [
            (MONDAY, _build("d1")),
            (MONDAY, _qc("failed", "d1")),
            (MONDAY, _build("d2")),
            (MONDAY, _qc("succeeded", "d2")),
        ],
    )
    assert _deploys(records) == [("Mon 09:00", "release/d2")]
    assert _held(records) == [("held", "guard quality-first"), ("would_hold", "guard audit-trail")]
    final = replay(catalog, [(MONDAY, _build("d1")), (MONDAY, _qc("failed", "d1"))])
    why = explain(catalog, final.states[0], "release/d1", "deploy")
    assert why is not None
    assert why.status == "pending"
    assert why.holds == (
        "guard quality-first: run.stages.quality_check.status == 'succeeded' is not true",
    )


def test_no_deploy_on_weekends_by_the_event_time_rechecked_until_monday() -> None:
    records = _replay(
        _release("quality-first"), [(SATURDAY, _build("w1")), (SATURDAY, _qc("succeeded", "w1"))]
    )
    # held on Saturday, checked every six hours, triggered at the first check on Monday
    assert _deploys(records) == [("Mon 03:00", "release/w1")]
    assert [h for h in _held(records) if h[0] == "held"] == [("held", "guard no-weekend-deploys")]


def test_a_guard_that_cannot_be_evaluated_holds_the_stage() -> None:
    broken = RELEASE.replace(
        "run.stages.quality_check.status == 'succeeded'", "run.stages.nope.status == 'succeeded'"
    )
    loaded = parse_specs(broken, "release.yaml")
    catalog = Catalog.build(loaded.pipelines, policies=loaded.policies[:1])
    records = _replay(catalog, [(MONDAY, _build("d1")), (MONDAY, _qc("succeeded", "d1"))])
    assert _deploys(records) == []
    assert "could not be evaluated" in records[-1].step.violations[0].reason


def test_guards_of_unknown_pipelines_or_stages_do_not_build_a_catalog() -> None:
    loaded = parse_specs(RELEASE, "release.yaml")
    guard = loaded.policies[0]
    with pytest.raises(SpecError, match="pipeline 'release' has no stage 'ship'"):
        Catalog.build(loaded.pipelines, policies=[guard.model_copy(update={"stages": ["ship"]})])
    with pytest.raises(SpecError, match="unknown pipeline 'other'"):
        Catalog.build(loaded.pipelines, policies=[guard.model_copy(update={"pipeline": "other"})])
