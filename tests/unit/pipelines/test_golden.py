"""Every class of validation message, pinned by a corpus of broken specs.

Each ``tests/golden/spec/<case>.yaml`` is validated alone (topics from the packaged ``topics.yaml``
there) and its printed problems must equal ``<case>.expected``. To accept new output after an
intended change: ``STREAMCOORD_UPDATE_GOLDEN=1 pytest tests/unit/pipelines/test_golden.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streamcoord.events.topics import PACKAGED_TOPICS_FILE
from streamcoord.pipelines import validate_paths

GOLDEN = Path(__file__).parents[2] / "golden" / "spec"
CASES = sorted(GOLDEN.glob("*.yaml"))
UPDATE = os.environ.get("STREAMCOORD_UPDATE_GOLDEN") == "1"


def render(case: Path) -> str:
    report = validate_paths([case.name], topics_file=PACKAGED_TOPICS_FILE)
    return "".join(f"{problem}\n" for problem in report.problems)


def test_the_corpus_is_there() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_messages_match_golden(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN)
    actual = render(case)
    expected_file = case.with_suffix(".expected")
    if UPDATE:
        expected_file.write_text(actual, encoding="utf-8")
    assert actual, f"{case.name} is in the broken corpus but validates"
    assert actual == expected_file.read_text(encoding="utf-8")
