"""The state one events-topic partition owns, stored per key so changelog deltas stay small.

Keys: ``run/<pipeline>/<run_key>`` (the latest generation of a run, its stages and timers),
``pipe/<pipeline>`` (pause flag, matches held while paused; on the partition of
``active/<pipeline>`` also the pipeline's run slots: holders and queued runs, and its quotas'
books, see :mod:`~streamcoord.core._quotas`), ``pool/<name>``
(holders and waiters, on the pool's owning partition), ``subs/<pipeline>/<run_key>``
(cross-pipeline subscribers of a run), ``arr/<pipeline>/<run_key>`` (data arrivals),
``wm/<pipeline>`` (data-trigger watermarks), ``spec`` (the partition's active spec version,
absent until one is activated), ``gen/<pipeline>/<run_key>`` (the generation of a run that
expired, see :mod:`~streamcoord.core._retention`), ``expiry`` (the partition's pending
retention sweep) and ``chain`` (the head of the partition's decision chain, see
:mod:`~streamcoord.core._audit`). Every value is orjson with a ``v`` version.

:func:`~streamcoord.core.decide` mutates the state in place and returns it; the runtime undoes
a batch whose Kafka transaction it aborts by loading the committed state again
(:meth:`CoordinatorState.load` from the changelog).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from streamcoord.core._construction import build
from streamcoord.core._tracing import run_trace_id
from streamcoord.events.models import TimerFired, TimerFiredData
from streamcoord.events.partitioning import anchor_key

__all__ = [
    "SWEEP_KEY",
    "VERSION",
    "CoordinatorState",
    "ParkedRun",
    "RunState",
    "StageState",
    "event_digest",
    "finished_at_of",
    "quota_timer_event",
    "run_id_of",
    "sweep_event",
]

# 7: ``pipe/`` records of a pipeline with a quota policy keep its books (``starts``, the times
# of the runs started in its windows, ``quota_held``, ``quota_due``: the queue's hold and timer);
# 6: runs may name the principal that started them (pr, only when one did), the partition's
# decision chain head is the ``chain`` key (see _audit); 5: finished runs keep their finish
# time (fa), expired runs leave a gen/ marker;
# 4: runs may name their spec version (sv), stages the pool they asked (a 9th field, only when
# they did); 3: runs keep their trace (tr, tp, at) and stages their trigger time; 2: the dedup
# window is one string of 8-byte digests (1: a list of ids). Every older version still loads.
VERSION = 7
TERMINAL = frozenset(
    {"succeeded", "failed", "timed_out", "skipped", "cancelled", "upstream_failed"}
)
RUN_TERMINAL = frozenset({"succeeded", "failed", "cancelled", "skipped"})
SEEN_LIMIT = 128
_DIGEST = 8  # bytes per remembered event: 128 events cost 1 KiB, whatever the ids' length
TIMER_SOURCE = "streamcoord/timer"
SPEC_KEY = "spec"
SWEEP_KEY = "expiry"  # {"v": 1, "due": ISO time of the partition's next retention sweep}
QUOTA_TIMER = "quota"  # purpose of the timer that moves a pipeline's quota queue (see _quotas)
# what a terminal run saved before version 5 counts as its finish time when it has no creation time
_LONG_AGO = "1970-01-01T00:00:00+00:00"
# What most stages hold (every pending one): shared, never changed in place (a stage's causes and
# outputs are replaced, never mutated: the read-only types keep it so), a few hundred bytes a run.
_NO_CAUSES: Sequence[str] = ()
_NO_OUTPUTS: Mapping[str, Any] = {}


class StageState:
    """One stage of one run."""

    __slots__ = (
        "attempt",
        "caused_by",
        "done_by",
        "outputs",
        "pool",
        "reason",
        "status",
        "triggered_at",
        "watermark",
    )

    def __init__(  # noqa: PLR0917  # positional so load() can splat the compact list form
        self,
        status: str = "pending",
        attempt: int = 0,
        caused_by: Sequence[str] | None = None,
        outputs: Mapping[str, Any] | None = None,
        reason: str = "",
        watermark: str | None = None,
        done_by: str | None = None,
        triggered_at: str | None = None,
        pool: str | None = None,
    ) -> None:
        self.status = status
        self.attempt = attempt
        self.caused_by = caused_by or _NO_CAUSES
        self.outputs = outputs or _NO_OUTPUTS
        self.reason = reason
        self.watermark = watermark
        self.done_by = done_by  # id of the event that ended the stage
        self.triggered_at = triggered_at  # ISO time of the current attempt's trigger (its span)
        # the pool last asked for a slot: what to give back should the spec lose the stage
        self.pool = pool

    def dump(self) -> list[Any]:
        # the pool only when the stage asked one: most stages never do
        return [
            self.status,
            self.attempt,
            self.caused_by,
            self.outputs,
            self.reason,
            self.watermark,
            self.done_by,
            self.triggered_at,
            *((self.pool,) if self.pool else ()),
        ]

    @classmethod
    def load(cls, raw: list[Any]) -> StageState:
        stage = cls(*raw)
        stage.status = sys.intern(stage.status)  # one string per status, not one per stage
        return stage


class RunState:
    """The latest generation of one run (older generations live only in run records)."""

    __slots__ = (
        "base",
        "caused_by",
        "created_at",
        "ext",
        "finished_at",
        "gen",
        "params",
        "parent_span",
        "pipeline",
        "principal",
        "run_id",
        "run_key",
        "seen",
        "spec_version",
        "stages",
        "status",
        "timers",
        "trace_id",
        "trigger",
    )

    def __init__(self, pipeline: str, run_key: str, gen: int = 1) -> None:
        self.pipeline = pipeline
        self.run_key = run_key
        self.gen = gen
        # identity never changes (a new generation is a new RunState): computed once, read often
        self.base = f"{pipeline}/{run_key}"
        self.run_id = self.base if gen == 1 else f"{self.base}#{gen}"
        self.status = "active"
        self.trigger: dict[str, Any] = {}
        self.caused_by: list[str] = []
        self.params: dict[str, Any] = {}
        self.seen = b""  # digests of the last SEEN_LIMIT events applied, oldest first
        self.stages: dict[str, StageState] = {}
        self.timers: dict[str, list[Any]] = {}  # timer id -> [due, purpose, stage, attempt]
        self.ext: dict[str, list[Any]] = {}  # need name -> [outcome, outputs, watermark, id]
        # the run's trace (see _tracing): trace id, the creating event's span, creation time
        self.trace_id = ""
        self.parent_span: str | None = None
        self.created_at = ""
        # the spec version the run follows until it ends; None: the partition's current one
        self.spec_version: str | None = None
        self.finished_at: str | None = None  # ISO time it last finished (retention counts from it)
        self.principal: str | None = None  # who started it (see _audit); None: nobody vouched

    def signature(self) -> tuple[object, ...]:
        """What a run record shows: generation, run status and every stage's status."""
        # a list display unpacks faster than a generator (this runs twice per decided event)
        return (self.gen, self.status, *[stage.status for stage in self.stages.values()])

    def has_seen(self, digest: bytes) -> bool:
        """Whether the event of ``digest`` (see :func:`event_digest`) is among the last applied."""
        found = self.seen.find(digest)
        while found != -1 and found % _DIGEST:  # a match straddling two digests is not one
            found = self.seen.find(digest, found + 1)
        return found != -1

    def remember(self, digest: bytes) -> None:
        self.seen = self.seen[-(SEEN_LIMIT - 1) * _DIGEST :] + digest

    def dump(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "p": self.pipeline,
            "k": self.run_key,
            "g": self.gen,
            "s": self.status,
            "t": self.trigger,
            "c": self.caused_by,
            "a": self.params,
            "d": base64.b64encode(self.seen).decode(),
            # StageState.dump inlined: a run's stages are dumped on every change of the run
            "st": {
                n: [
                    s.status,
                    s.attempt,
                    s.caused_by,
                    s.outputs,
                    s.reason,
                    s.watermark,
                    s.done_by,
                    s.triggered_at,
                    *((s.pool,) if s.pool else ()),
                ]
                for n, s in self.stages.items()
            },
            "tm": self.timers,
            "x": self.ext,
            "tr": self.trace_id,
            "tp": self.parent_span,
            "at": self.created_at,
            **({"sv": self.spec_version} if self.spec_version is not None else {}),
            "fa": self.finished_at,
            **({"pr": self.principal} if self.principal is not None else {}),
        }

    @classmethod
    def load(cls, raw: dict[str, Any]) -> RunState:
        run = cls(raw["p"], raw["k"], raw["g"])
        run.status = raw["s"]
        run.trigger = raw["t"]
        run.caused_by = raw["c"]
        run.params = raw["a"]
        seen = raw["d"]
        if isinstance(seen, list):  # version 1: the ids themselves
            seen = base64.b64encode(b"".join(event_digest(d) for d in seen[-SEEN_LIMIT:])).decode()
        run.seen = base64.b64decode(seen)
        run.stages = {n: StageState.load(s) for n, s in raw["st"].items()}
        run.timers = raw["tm"]
        run.ext = raw["x"]
        # before version 3: the trace a run without a traceparent would have had
        run.trace_id = raw.get("tr") or run_trace_id(run.run_id, None)
        run.parent_span = raw.get("tp")
        run.created_at = raw.get("at", "")
        run.spec_version = raw.get("sv")
        run.principal = raw.get("pr")  # before version 6: not known
        run.finished_at = finished_at_of(raw)
        return run


def finished_at_of(raw: dict[str, Any]) -> str | None:
    """The finish time of the run stored as ``raw`` (None while it is unfinished)."""
    # before version 5: a finished run counts as finished when it was created
    return raw.get("fa") or ((raw.get("at") or _LONG_AGO) if raw["s"] in RUN_TERMINAL else None)


class ParkedRun:
    """A restored run not yet asked for: its changelog value, and its status for scans.

    A restore holds most runs idle; kept as their value (a fifth of the memory of a
    :class:`RunState`, and no objects for the collector to walk) they are decoded when an event
    first needs them."""

    __slots__ = ("status", "value")

    def __init__(self, status: str, value: bytes) -> None:
        self.status = status
        self.value = value

    def load(self) -> RunState:
        return RunState.load(orjson.loads(self.value))


class CoordinatorState:
    """Runs and bookkeeping of one partition; see the module docstring for keys and mutation."""

    __slots__ = (
        "_finished",
        "_gone",
        "_misc",
        "_runs",
        "_touched",
        "_watched",
        "partition",
        "partitions",
    )

    def __init__(self, partition: int, partitions: int) -> None:
        self.partition = partition
        self.partitions = partitions
        # runs by base; restored ones stay parked until an event or a reader asks for them
        self._runs: dict[str, RunState | ParkedRun] = {}
        self._misc: dict[str, dict[str, Any]] = {}
        # run base -> generation of the run that expired (``gen/`` keys)
        self._gone: dict[str, int] = {}
        # (finish time, run base) of finished runs, earliest first, for retention. Derived from
        # the runs (rebuilt on load, never stored); an entry whose run has since been retried,
        # rerun or expired is stale and skipped, so only the runs decide what expires.
        self._finished: list[tuple[datetime, str]] = []
        self._touched: dict[str, None] = {}
        # run base -> its status signature before this step changed it (None: new run)
        self._watched: dict[str, tuple[object, ...] | None] = {}

    @classmethod
    def empty(cls, partition: int = 0, partitions: int = 1) -> CoordinatorState:
        """No runs yet."""
        return cls(partition, partitions)

    @classmethod
    def load(
        cls, partition: int, partitions: int, items: Iterable[tuple[str, bytes | None]]
    ) -> CoordinatorState:
        """Restore from changelog records (the last value per key wins; None deletes)."""
        state = cls(partition, partitions)
        for key, value in items:
            state._put(key, value)
        return state

    def _put(self, key: str, value: bytes | None) -> None:
        if key.startswith("run/"):
            self._runs.pop(key[4:], None)
            if value is not None:
                self._park(key[4:], value)
        elif key.startswith("gen/"):
            self._gone.pop(key[4:], None)
            if value is not None:
                self._gone[key[4:]] = orjson.loads(value)["g"]
        else:
            self._misc.pop(key, None)
            if value is not None:
                self._misc[key] = orjson.loads(value)

    def _park(self, base: str, value: bytes) -> None:
        """Hold the run stored as ``value`` undecoded, unless it has timers to re-arm (then it is
        about to be needed); a finished one goes into the retention index either way."""
        raw = orjson.loads(value)
        finished_at = finished_at_of(raw)
        if finished_at is not None and raw["s"] in RUN_TERMINAL:
            heapq.heappush(self._finished, (datetime.fromisoformat(finished_at), base))
        self._runs[base] = RunState.load(raw) if raw["tm"] else ParkedRun(raw["s"], value)

    def _decoded(self, base: str) -> RunState:
        """The run ``base`` (which must exist), decoded now if it was parked."""
        run = self._runs[base]
        if isinstance(run, ParkedRun):
            run = self._runs[base] = run.load()
        return run

    def _unparked(self, base: str) -> RunState | None:
        return self._decoded(base) if base in self._runs else None

    def dump_key(self, key: str) -> bytes | None:
        """The serialized value of ``key``; None means deleted (write a tombstone)."""
        if key.startswith("run/"):
            run = self._runs.get(key[4:])
            if isinstance(run, ParkedRun):  # in the current version, as a decoded one would be
                run = run.load()
            return None if run is None else orjson.dumps(run.dump())
        if key.startswith("gen/"):
            gen = self._gone.get(key[4:])
            return None if gen is None else orjson.dumps({"v": 1, "g": gen})
        value = self._misc.get(key)
        return None if value is None else orjson.dumps(value)

    def keys(self) -> list[str]:
        """Every live key, sorted."""
        return sorted(
            [f"run/{b}" for b in self._runs] + [f"gen/{b}" for b in self._gone] + list(self._misc)
        )

    def dump(self) -> list[tuple[str, bytes]]:
        """Every key and value, sorted by key (a full snapshot)."""
        return [(k, v) for k in self.keys() if (v := self.dump_key(k)) is not None]

    # --- used by decide ----------------------------------------------------------------------

    def touch(self, key: str) -> None:
        """Note that ``key`` is about to change (its new value goes to the changelog)."""
        self._touched[key] = None

    def take_status_changes(self) -> list[RunState]:
        """Runs whose own or stages' status changed since the step began, in first-touch order."""
        changed = [
            run
            for base, before in self._watched.items()
            if (run := self._unparked(base)) is not None and run.signature() != before
        ]
        self._watched = {}
        return changed

    def take_touched(self) -> tuple[str, ...]:
        keys = tuple(self._touched)
        self._touched = {}
        return keys

    def run(self, base: str) -> RunState | None:
        return self._unparked(base)

    def run_for_update(self, base: str) -> RunState:
        """The run ``base`` (which must exist), noted as changing."""
        run = self._decoded(base)
        self.touch(f"run/{base}")
        self._watched.setdefault(base, run.signature())
        return run

    def put_run(self, run: RunState) -> None:
        self.touch(f"run/{run.base}")
        self._watched.setdefault(run.base, None)
        self._runs[run.base] = run
        if run.base in self._gone:  # a new generation after expiry: the run holds it again
            self.touch(f"gen/{run.base}")
            del self._gone[run.base]

    # --- retention (see _retention) ------------------------------------------------------------

    def expired_gen(self, base: str) -> int | None:
        """The generation of the run ``base`` if it expired (and no newer one began since)."""
        return self._gone.get(base)

    def index_finished(self, run: RunState, finished_at: datetime) -> None:
        """Note that ``run`` finished at ``finished_at``, for expiry."""
        heapq.heappush(self._finished, (finished_at, run.base))

    def oldest_finished(self) -> tuple[datetime, RunState] | None:
        """The finished run that finished first, with its finish time (stale entries dropped)."""
        heap = self._finished
        while heap:
            when, base = heap[0]
            run = self._unparked(base)
            if (
                run is not None
                and run.status in RUN_TERMINAL
                and run.finished_at is not None
                and datetime.fromisoformat(run.finished_at) == when
            ):
                return when, run
            heapq.heappop(heap)
        return None

    def expire_run(self, run: RunState) -> None:
        """Drop ``run`` (its key becomes a tombstone), keeping only its generation."""
        heapq.heappop(self._finished)  # ``run`` is the oldest finished run
        self.touch(f"run/{run.base}")
        self.touch(f"gen/{run.base}")
        del self._runs[run.base]
        self._gone[run.base] = run.gen

    def drop_misc(self, key: str) -> None:
        """Delete ``key`` if present (its changelog record becomes a tombstone)."""
        if key in self._misc:
            self.touch(key)
            del self._misc[key]

    @property
    def spec_version(self) -> str | None:
        """The partition's active spec version; None until one is activated here."""
        spec = self._misc.get(SPEC_KEY)
        return None if spec is None else str(spec["version"])

    @spec_version.setter
    def spec_version(self, version: str | None) -> None:
        self.touch(SPEC_KEY)
        if version is None:
            self._misc.pop(SPEC_KEY, None)
        else:
            self._misc[SPEC_KEY] = {"v": 1, "version": version}

    def misc(self, key: str) -> dict[str, Any] | None:
        return self._misc.get(key)

    def misc_for_update(self, key: str, default: dict[str, Any]) -> dict[str, Any]:
        self.touch(key)
        return self._misc.setdefault(key, default)

    # --- read side ---------------------------------------------------------------------------

    def runs(self) -> list[RunState]:
        """Every run this partition holds, by run id (parked ones decoded for good)."""
        return [self._decoded(b) for b in sorted(self._runs)]

    def run_statuses(self) -> Iterator[str]:
        """The status of every run this partition holds, without decoding parked ones."""
        return (run.status for run in self._runs.values())

    def timers(self) -> list[tuple[datetime, str, TimerFired]]:
        """Pending durable timers, by due time then id, for re-arming after a restart."""
        out = [
            (datetime.fromisoformat(t[0]), tid, timer_event(tid, run.run_id, t))
            for run in self._runs.values()
            if isinstance(run, RunState)  # a parked run has no timers
            for tid, t in run.timers.items()
        ]
        out += [
            (datetime.fromisoformat(due), event.data.timer_id, event)
            for key, value in self._misc.items()
            if key.startswith("pipe/") and (due := value.get("quota_due")) is not None
            for event in (quota_timer_event(key[5:], due),)
        ]
        sweep = self._misc.get(SWEEP_KEY)
        if sweep is not None:
            due = datetime.fromisoformat(sweep["due"])
            event = sweep_event(self.partition, self.partitions, due)
            out.append((due, event.data.timer_id, event))
        out.sort(key=lambda item: (item[0], item[1]))
        return out

    def __iter__(self) -> Iterator[RunState]:
        return iter(self.runs())


def event_digest(dedup: str) -> bytes:
    """What the dedup window stores for an event: 8 bytes of blake2b of its source and id.

    Not ``hash()``: the digest is stored, so it must not change between processes.
    """
    return hashlib.blake2b(dedup.encode(), digest_size=_DIGEST).digest()


def run_id_of(base: str, gen: int) -> str:
    """The id of generation ``gen`` of the run ``base``."""
    return base if gen == 1 else f"{base}#{gen}"


def sweep_event(partition: int, partitions: int, due: datetime) -> TimerFired:
    """The event of a partition's retention sweep timer (keyed to land on that partition)."""
    timer_id = f"expiry|p{partition}"
    return build(
        TimerFired,
        {"sckey": anchor_key("expiry", partition, partitions)},
        id=timer_id,
        source=TIMER_SOURCE,
        time=due,
        data=build(
            TimerFiredData,
            None,
            timer_id=timer_id,
            purpose="expiry",
            run_id=None,
            stage=None,
            attempt=None,
            due=due,
        ),
    )


def quota_timer_event(pipeline: str, due: str) -> TimerFired:
    """The event of the timer that moves ``pipeline``'s quota queue at ``due`` (ISO), keyed to
    land on the partition that keeps the pipeline's slots; its id names when it is due, so that
    each firing is a new event."""
    timer_id = f"{QUOTA_TIMER}|{pipeline}@{due}"
    when = datetime.fromisoformat(due)
    return build(
        TimerFired,
        {"sckey": f"active/{pipeline}"},
        id=timer_id,
        source=TIMER_SOURCE,
        time=when,
        data=build(
            TimerFiredData,
            None,
            timer_id=timer_id,
            purpose=QUOTA_TIMER,
            run_id=None,
            stage=None,
            attempt=None,
            due=when,
        ),
    )


def timer_event(timer_id: str, run_id: str, timer: list[Any]) -> TimerFired:
    """The event a timer produces when it fires."""
    due = datetime.fromisoformat(timer[0])
    return build(
        TimerFired,
        {"sckey": run_id.split("#", 1)[0]},
        id=timer_id,
        source=TIMER_SOURCE,
        time=due,
        data=build(
            TimerFiredData,
            None,
            timer_id=timer_id,
            purpose=timer[1],
            run_id=run_id,
            stage=timer[2],
            attempt=timer[3],
            due=due,
        ),
    )
