"""The audit trail read back: verify the decision chains, tell one run's story.

The core writes the trail (see :mod:`streamcoord.core._audit`): every decision record names the
principal and event it was made on and is a link of its coordinator partition's hash chain.
This package checks the chains of a decisions topic (:func:`verify_chains`, the first broken
link of each) and puts one run's records in order (:func:`run_story`).
"""

from streamcoord.audit._chain import Break, ChainReport, ChainSummary, verify_chains
from streamcoord.audit._story import StoryEntry, run_story, story_json

__all__ = [
    "Break",
    "ChainReport",
    "ChainSummary",
    "StoryEntry",
    "run_story",
    "story_json",
    "verify_chains",
]
