"""Golden replays: committed event logs and the exact decisions they must produce.

Each case is a folder with ``log.jsonl``, ``expected.jsonl`` and its specs: a ``spec.yaml``
beside the log, or ``specs.txt`` listing spec files relative to the repository root (the
``examples/``); further spec versions the log activates are ``spec.<name>.yaml`` files beside
it. Regenerate after an intended behaviour change with
``STREAMCOORD_REGEN_GOLDEN=1 pytest tests/unit/core/test_golden.py`` and review the diff of
``expected.jsonl``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamcoord.core import Catalog, CatalogSet, Publish
from streamcoord.core.replay import parse_log, replay, step_json
from streamcoord.errors import EventError
from streamcoord.events.models import StageTrigger
from streamcoord.pipelines.loader import load_specs

ROOT = Path(__file__).parents[3]
GOLDEN = ROOT / "tests" / "golden" / "core"
CASES = sorted(p for p in GOLDEN.iterdir() if (p / "log.jsonl").exists())


def _specs(case: Path) -> list[Path]:
    listed = case / "specs.txt"
    if listed.exists():
        return [ROOT / line for line in listed.read_text().split()]
    return [case / "spec.yaml"]


def _catalog(paths: list[Path]) -> Catalog:
    loaded = load_specs(paths)
    assert not loaded.problems
    return Catalog.build(loaded.pipelines, loaded.pools, policies=loaded.policies)


def _catalogs(case: Path) -> CatalogSet:
    """The case's specs as the default version, and each ``spec.<name>.yaml`` as another."""
    return CatalogSet.of(
        _catalog(_specs(case)), *[_catalog([p]) for p in sorted(case.glob("spec.*.yaml"))]
    )


def _output(case: Path, partitions: int) -> str:
    catalog = _catalogs(case)
    lines = (case / "log.jsonl").read_text().splitlines()
    result = replay(catalog, parse_log(lines), partitions=partitions)
    return "".join(step_json(r).decode() + "\n" for r in result.records)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_replay_matches_the_recorded_decisions(case: Path) -> None:
    expected = case / "expected.jsonl"
    actual = _output(case, 1)
    if os.environ.get("STREAMCOORD_REGEN_GOLDEN"):
        expected.write_text(actual)
    assert actual == expected.read_text()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_replay_is_byte_identical_when_repeated(case: Path) -> None:
    assert _output(case, 3) == _output(case, 3)


def _digests() -> dict[str, str]:
    """Each case's replay on 3 partitions, as a sha256 of its bytes."""
    return {c.name: hashlib.sha256(_output(c, 3).encode()).hexdigest() for c in CASES}


def test_replay_is_byte_identical_in_another_process_with_another_hash_seed() -> None:
    # Sets and dicts of strings iterate in an order that depends on PYTHONHASHSEED: a decision
    # that leaked such an order would differ between two coordinators, or a coordinator and its
    # replay, although each process is self-consistent.
    seed = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"
    program = (
        "import json; from tests.unit.core.test_golden import _digests; "
        "print(json.dumps(_digests()))"
    )
    other = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=110,
        check=True,
    )
    assert json.loads(other.stdout) == _digests()


def _triggers(case: Path, partitions: int) -> list[tuple[str, str, int, str]]:
    catalog = _catalogs(case)
    lines = (case / "log.jsonl").read_text().splitlines()
    result = replay(catalog, parse_log(lines), partitions=partitions)
    return [
        (c.event.data.run_id, c.event.data.stage, c.event.data.attempt, r.timestamp.isoformat())
        for r in result.records
        for c in r.step.commands
        if isinstance(c, Publish) and isinstance(c.event, StageTrigger)
    ]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_spreading_runs_over_partitions_triggers_the_same_stages(case: Path) -> None:
    # Matches, arrivals, pool and run-limit requests, subscriptions and pause commands cross
    # partitions as routed events; the stages triggered, and when, must not depend on the
    # partition count.
    assert _triggers(case, 3) == _triggers(case, 1)


def test_a_log_line_that_is_not_a_recorded_event_names_its_line_number() -> None:
    good = (GOLDEN / "basic" / "log.jsonl").read_text().splitlines()[0]
    assert len(list(parse_log([good, "", "  "]))) == 1  # blank lines are skipped
    with pytest.raises(EventError, match="log line 3 is not a recorded event"):
        list(parse_log([good, "", '{"timestamp": "yesterday", "event": {}}']))
