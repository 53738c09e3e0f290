"""Every trigger rule against every mix of outcomes, as a table (so no branch of the rules
depends on what random examples happen to reach)."""

from __future__ import annotations

import dataclasses

import pytest

from streamcoord.core import Catalog
from streamcoord.core._readiness import verdict
from streamcoord.pipelines.models import Pipeline

_STAGE = (
    Catalog.build(
        [
            Pipeline.model_validate(
                {
                    "name": "p",
                    "run_key": "'k'",
                    "stages": [{"name": "up"}, {"name": "s", "needs": ["up"]}],
                }
            )
        ]
    )
    .pipelines["p"]
    .stages["s"]
)

# outcomes: S succeeded, F failed, K skipped/cancelled, P not known yet
CASES = [
    ("all_success", "SS", "ready"),
    ("all_success", "SF", "upstream_failed"),
    ("all_success", "SK", "skipped"),
    ("all_success", "SP", "wait"),
    ("none_failed", "SK", "ready"),
    ("none_failed", "KF", "upstream_failed"),
    ("none_failed", "SP", "wait"),
    ("all_done", "SFK", "ready"),
    ("all_done", "SP", "wait"),
    ("all_failed", "FF", "ready"),
    ("all_failed", "FS", "skipped"),
    ("all_failed", "FK", "skipped"),
    ("all_failed", "FP", "wait"),
    ("one_success", "FS", "ready"),
    ("one_success", "FP", "wait"),
    ("one_success", "FK", "upstream_failed"),
    ("one_success", "KK", "skipped"),
    ("one_failed", "SF", "ready"),
    ("one_failed", "SP", "wait"),
    ("one_failed", "SK", "skipped"),
]


@pytest.mark.parametrize(("rule", "outcomes", "expected"), CASES)
def test_each_rule_decides_as_documented(rule: str, outcomes: str, expected: str) -> None:
    stage = dataclasses.replace(_STAGE, trigger_rule=rule)
    assert verdict(stage, list(outcomes)) == expected


def test_a_stage_without_needs_is_ready() -> None:
    assert verdict(dataclasses.replace(_STAGE, trigger_rule="one_failed"), []) == "ready"
