"""The coordinator service: the pure core wrapped in aiokafka, exactly once.

One consumer group reads ``streamcoord.events``. Each assigned partition gets its own state
(restored from the compacted ``streamcoord.state`` changelog) and its own transactional producer,
so the triggers, records, changelog deltas and consumed position of one batch commit together.
The specs come from local files (:class:`StaticSpecs`) or from every version published on the
specs topic (:class:`SpecsFollower`).
"""

from streamcoord.runtime.coordinator import Coordinator
from streamcoord.runtime.settings import CoordinatorSettings, TopicNames
from streamcoord.runtime.specs import SpecsFollower, SpecSource, StaticSpecs
from streamcoord.runtime.tuning import tune_garbage_collector

__all__ = [
    "Coordinator",
    "CoordinatorSettings",
    "SpecSource",
    "SpecsFollower",
    "StaticSpecs",
    "TopicNames",
    "tune_garbage_collector",
]
