"""OpenLineage for streamcoord's runs: RunEvents from the run records, sent by the official
client (``pip install streamcoord[lineage]``; its transports are configured the client's usual
way: ``openlineage.yml`` or ``OPENLINEAGE_*`` variables).

A pipeline run is an OpenLineage run of job ``<pipeline>``; each stage attempt a run of job
``<pipeline>.<stage>`` whose parent is its pipeline run; a run a finished upstream run caused
(a ``pipeline`` trigger) has that run as parent. Run ids are UUIDs derived from streamcoord's
ids, so every consumer of the runs topic names the same run the same way.
"""

from streamcoord.lineage._events import LineageTracker, attempt_uuid, run_uuid

__all__ = ["LineageTracker", "attempt_uuid", "run_uuid"]
