"""The coordinator's state after many finished runs, before and after retention expires them.

Run alone: ``python -m bench.state_size [--runs N]`` (default 1,000,000; core only, no broker).

What is measured, in this process:

1. One run of a 3-stage pipeline is driven to ``succeeded`` through :func:`decide`; its
   changelog value is the template of every other run (same size, its own run key and finish
   time, a millisecond apart).
2. ``CoordinatorState.load`` restores N such runs from (key, value) pairs, as a restart reads
   the changelog. Reported: live keys, bytes of the dumped state (keys + values, what the
   compacted changelog holds), resident memory (``/proc/self/statm``) above the process's
   baseline.
3. The partition's retention sweep fires (through :func:`decide`, as the runtime feeds it)
   until no run is left, and the same figures are taken again: what stays is one ``gen/``
   marker per run key. This process's RSS hardly drops (the freed objects are scattered over
   the allocator's arenas, which new runs reuse), so the state left is also restored by a
   fresh process, as a restarted coordinator would, and that process's RSS is reported.

For the choice of one sweep timer per partition over a timer per finished run, the bench also
measures what a timer per run would hold: the runtime's armed ``TimerQueue`` entry (its
``TimerFired`` event) per run, and the bytes the timer adds to the run's changelog value.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from streamcoord.core import Catalog, CoordinatorState, SetTimer, decide
from streamcoord.core._state import sweep_event, timer_event
from streamcoord.events.models import ExternalEvent, StageStarted, StageSucceeded
from streamcoord.pipelines.models import Pipeline
from streamcoord.runtime.timers import TimerQueue

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RETENTION = timedelta(days=7)
PAGE = os.sysconf("SC_PAGE_SIZE")
CATALOG = Catalog.build(
    [
        Pipeline.model_validate(
            {
                "name": "orders",
                "run_key": "event.data.day",
                "triggers": [{"kind": "event", "type": "shop.orders.landed"}],
                "stages": [
                    {"name": "extract"},
                    {"name": "transform", "needs": ["extract"]},
                    {"name": "load", "needs": ["transform"]},
                ],
            }
        )
    ],
    retention=RETENTION,
)


def rss() -> int:
    """Resident bytes of this process now."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def settled_rss() -> int:
    """Resident bytes after the collector ran and the allocator gave free pages back."""
    gc.collect()
    try:
        import ctypes  # glibc only; elsewhere RSS is read as it is

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return rss()


def template() -> dict[str, Any]:
    """The changelog value of one succeeded 3-stage run, decided by the core."""
    state = CoordinatorState.empty()
    day = "2026-01-01"
    decide(
        CATALOG,
        state,
        ExternalEvent(
            id="landed-1", source="warehouse", type="shop.orders.landed", data={"day": day}
        ),
        T0,
    )
    for n, stage in enumerate(("extract", "transform", "load")):
        ref = {"run_id": f"orders/{day}", "stage": stage, "attempt": 1}
        decide(CATALOG, state, StageStarted(id=f"s{n}", source="worker", data=ref), T0)
        decide(CATALOG, state, StageSucceeded(id=f"ok{n}", source="worker", data=ref), T0)
    run = state.run(f"orders/{day}")
    assert run is not None
    assert run.status == "succeeded"
    raw: dict[str, Any] = orjson.loads(state.dump_key(f"run/orders/{day}") or b"")
    return raw


def changelog(runs: int) -> Iterator[tuple[str, bytes]]:
    """``runs`` finished runs as changelog records, each with its own key and finish time."""
    raw = template()
    for n in range(runs):
        key = f"k{n:07d}"
        finished = (T0 + timedelta(milliseconds=n)).isoformat()
        yield f"run/orders/{key}", orjson.dumps({**raw, "k": key, "at": finished, "fa": finished})


def measure(state: CoordinatorState, baseline: int) -> dict[str, Any]:
    keys = state.keys()
    size = sum(len(k) + len(state.dump_key(k) or b"") for k in keys)
    return {
        "keys": len(keys),
        "runs": sum(k.startswith("run/") for k in keys),
        "state_bytes": size,
        "rss_bytes": settled_rss() - baseline,
    }


def restored_rss(state: CoordinatorState) -> int:
    """RSS a fresh process adds by restoring ``state`` from its dump (a restart)."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as dump:
        keys = state.keys()
        for key in keys:
            dump.write(orjson.dumps([key, (state.dump_key(key) or b"").decode()]) + b"\n")
        dump.flush()
        out = subprocess.run(
            [sys.executable, "-m", "bench.state_size", "--restore", dump.name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return int(out)


def _restore(path: str) -> int:
    baseline = settled_rss()
    with open(path, "rb") as lines:
        state = CoordinatorState.load(0, 1, ((k, v.encode()) for k, v in map(orjson.loads, lines)))
    grown = settled_rss() - baseline
    assert state.keys()
    return grown


def expire_all(state: CoordinatorState, runs: int) -> tuple[int, float]:
    """Fire the sweep (as the runtime would, at its due time) until it sets no next one."""
    last = T0 + timedelta(milliseconds=runs)
    due = last + RETENTION  # the sweep a finished run arms, fired once every run is due
    state.misc_for_update("expiry", {"v": 1, "due": due.isoformat()})
    state.take_touched()
    sweeps = 0
    started = time.process_time()
    event = sweep_event(0, 1, due)
    while True:
        step = decide(CATALOG, state, event, due)
        state.take_touched()
        sweeps += 1
        nxt = [c for c in step.commands if isinstance(c, SetTimer)]
        if not nxt:
            return sweeps, time.process_time() - started
        event, due = nxt[0].event, max(nxt[0].due, due)


def per_run_timer(sample: int = 100_000) -> dict[str, float]:
    """What one timer per finished run would cost: the armed queue entry, and changelog bytes."""
    gc.collect()
    before = rss()
    queue = TimerQueue()
    for n in range(sample):
        timer = [(T0 + RETENTION).isoformat(), "expiry", None, None]
        timer_id = f"orders/k{n:07d}|||expiry"
        queue.arm(timer_id, T0 + RETENTION, timer_event(timer_id, f"orders/k{n:07d}", timer))
    armed = rss() - before
    entry = orjson.dumps(
        {"orders/k0000000|||expiry": [(T0 + RETENTION).isoformat(), "expiry", None, None]}
    )
    del queue
    return {"armed_bytes_per_timer": armed / sample, "changelog_bytes_per_timer": len(entry) - 2}


def run(runs: int) -> dict[str, Any]:
    """Every figure, as a dict (what ``bench/run.py`` records)."""
    timers = per_run_timer()  # first: once the runs were freed, their memory would be reused
    baseline = settled_rss()
    started = time.perf_counter()
    state = CoordinatorState.load(0, 1, changelog(runs))
    loaded_s = time.perf_counter() - started
    before = measure(state, baseline)
    sweeps, expire_cpu_s = expire_all(state, runs)
    after = measure(state, baseline)
    assert after["runs"] == 0, "the sweeps left runs behind: the bench is broken"
    after["restored_rss_bytes"] = restored_rss(state)
    return {
        "finished_runs": runs,
        "retention_s": RETENTION.total_seconds(),
        "load_s": loaded_s,
        "before": before,
        "after": after,
        "sweeps": sweeps,
        "expire_cpu_s": expire_cpu_s,
        "peak_rss_bytes": _peak(),
        "per_run_timer": timers,
    }


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def markdown_rows(r: dict[str, Any]) -> list[str]:
    """Rows for the benchmark table (``bench/report.py``)."""
    b, a, t = r["before"], r["after"], r["per_run_timer"]
    n = r["finished_runs"]
    return [
        f"| state after {n:,} finished runs: keys / dumped MB / RSS MB | "
        f"{b['keys']:,} / {b['state_bytes'] / 2**20:,.0f} / {b['rss_bytes'] / 2**20:,.0f} | |",
        f"| the same after retention expired them ({r['sweeps']:,} sweeps, "
        f"{r['expire_cpu_s']:.1f} s CPU): keys / dumped MB / RSS MB | "
        f"{a['keys']:,} / {a['state_bytes'] / 2**20:,.1f} / {a['rss_bytes'] / 2**20:,.0f}"
        f" (restored by a fresh process: {a['restored_rss_bytes'] / 2**20:,.0f}) | |",
        f"| a timer per finished run instead of one sweep per partition: armed bytes / "
        f"changelog bytes per run | {t['armed_bytes_per_timer']:,.0f} / "
        f"{t['changelog_bytes_per_timer']:,} | |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true", help="only the figures, as JSON")
    parser.add_argument("--restore", help=argparse.SUPPRESS)  # the fresh process of a restart
    args = parser.parse_args()
    if args.restore:
        print(_restore(args.restore))
        return
    result = run(args.runs)
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    if not args.json:
        print("\n".join(markdown_rows(result)))


if __name__ == "__main__":
    main()
