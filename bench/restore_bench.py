"""The core's share of a restore: ``python -m bench.restore_bench [--runs N]`` (no broker).

``CoordinatorState.load`` restores N active runs (the end-to-end bench's seeded changelog: a
20-stage chain with ``s0`` triggered, see ``bench/workload.py``) from (key, value) pairs, as a
restarted coordinator does once its changelog reader has them. Reported: the CPU and wall time of
the load (``time.process_time`` / ``time.perf_counter``) and the resident memory it added
(``/proc/self/statm``), also per 10,000 runs; then the same once every run is decoded (as
when an event has come for each). The changelog records are built before the clock
starts and stay referenced, so the memory is the state's alone. The end-to-end figure
(``python -m bench``) adds the Kafka read of the changelog and the coordinator's start.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.workload import seeded_states
from streamcoord.core import CoordinatorState

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """Resident bytes of this process."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    runs = parser.parse_args().runs
    (records,) = seeded_states(runs, 1)
    gc.collect()
    before = rss()
    cpu, wall = time.process_time(), time.perf_counter()
    # fresh value objects, as a consumer hands them over (the state may keep them)
    state = CoordinatorState.load(0, 1, ((k, bytes(bytearray(v))) for k, v in records))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    gc.collect()
    added = rss() - before
    print(
        f"restored {runs:,} runs in {cpu:.2f}s CPU ({wall:.2f}s wall); resident memory"
        f" +{added / 2**20:.1f} MB = {added / 2**20 / (runs / 10_000):.1f} MB per 10,000 runs"
    )
    cpu = time.process_time()
    decoded = len(state.runs())  # every run decoded, as if an event had come for each
    cpu = time.process_time() - cpu
    gc.collect()
    added = rss() - before
    if decoded != runs:
        raise SystemExit(f"restored {decoded} of {runs} runs: bench broken")
    print(
        f"every run decoded in {cpu:.2f}s CPU more; resident memory +{added / 2**20:.1f} MB ="
        f" {added / 2**20 / (runs / 10_000):.1f} MB per 10,000 runs"
    )


if __name__ == "__main__":
    main()
