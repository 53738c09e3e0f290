"""Quota policies: at most N runs of a pipeline start in any sliding window, over every partition.

The window counts by the times ``decide`` is given; queued runs start in request order when the
window frees (a ``quota`` timer), rejected ones are skipped and dead-lettered with the policy's
name, and a dry run only reports.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from streamcoord.core import (
    Catalog,
    CoordinatorState,
    Publish,
    SetTimer,
    decide,
    explain,
    partition_for,
    partition_key_for,
)
from streamcoord.core.replay import ReplayResult, replay
from streamcoord.events.models import (
    CloudEvent,
    Decision,
    ExternalEvent,
    RunCancel,
    StageFailed,
    StageRetry,
    StageSucceeded,
    StageTrigger,
)
from streamcoord.pipelines.models import Pipeline
from streamcoord.pipelines.policies import QuotaPolicy

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _catalog(
    max_runs: int = 2,
    window: str = "1h",
    *,
    over: str = "queue",
    enforce: bool = True,
    max_active_runs: int | None = None,
) -> Catalog:
    pipeline: dict[str, Any] = {
        "name": "p",
        "run_key": "event.data.key",
        "triggers": [{"kind": "event", "type": "go"}, {"kind": "manual"}],
        "stages": [{"name": "a"}],
    }
    if max_active_runs is not None:
        pipeline["concurrency"] = {"max_active_runs": max_active_runs, "over_limit": "queue"}
    quota = QuotaPolicy.model_validate(
        {
            "kind": "quota",
            "name": "q",
            "pipeline": "p",
            "max_runs": max_runs,
            "window": window,
            "over_quota": over,
            "enforce": enforce,
        }
    )
    return Catalog.build([Pipeline.model_validate(pipeline)], policies=[quota])


def _go(key: str) -> ExternalEvent:
    return ExternalEvent(id=f"go-{key}", source="app", type="go", data={"key": key})


def _ok(key: str) -> StageSucceeded:
    return StageSucceeded(
        id=f"ok-{key}", source="x", data={"run_id": f"p/{key}", "stage": "a", "attempt": 1}
    )


def _cancel(key: str) -> RunCancel:
    return RunCancel(id=f"cancel-{key}", source="cli", data={"run_id": f"p/{key}"})


def _replay(
    catalog: Catalog,
    log: list[tuple[datetime, CloudEvent]],
    partitions: int = 1,
    *,
    fire_timers: bool = True,
) -> ReplayResult:
    return replay(catalog, log, partitions=partitions, fire_timers=fire_timers)


def _starts(result: ReplayResult) -> list[tuple[datetime, str]]:
    """(time, run) of every run's first trigger, in order."""
    return [
        (r.timestamp, c.event.data.run_id)
        for r in result.records
        for c in r.step.commands
        if isinstance(c, Publish)
        and isinstance(c.event, StageTrigger)
        and c.event.data.attempt == 1
    ]


def _decisions(result: ReplayResult, action: str) -> list[Decision]:
    return [
        c.event.data
        for r in result.records
        for c in r.step.commands
        if isinstance(c, Publish)
        and isinstance(c.event.data, Decision)
        and c.event.data.action == action
    ]


def _status(result: ReplayResult, key: str) -> str:
    for state in result.states:
        run = state.run(f"p/{key}")
        if run is not None:
            return run.status
    raise AssertionError(f"no run p/{key}")


# --- the window as a property ----------------------------------------------------------------

_ACTIONS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=1500),  # seconds after the previous event
        st.sampled_from(["go", "go", "go", "ok", "cancel"]),
        st.integers(min_value=0, max_value=11),  # which run
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    actions=_ACTIONS,
    max_runs=st.integers(min_value=1, max_value=3),
    partitions=st.sampled_from([1, 3]),
)
def test_never_more_than_n_start_in_any_window_and_none_is_lost(
    actions: list[tuple[int, str, int]], max_runs: int, partitions: int
) -> None:
    at = T0
    log: list[tuple[datetime, CloudEvent]] = []
    for gap, action, n in actions:
        at += timedelta(seconds=gap)
        key = f"k{n}"
        made = {"go": _go, "ok": _ok, "cancel": _cancel}[action](key)
        log.append((at, made.model_copy(update={"id": f"{made.id}-{len(log)}"})))
    result = _replay(_catalog(max_runs, "1h"), log, partitions)
    starts = _starts(result)
    held = any(v.code == "quota_queued" for r in result.records for v in r.step.violations)
    event(f"held by the quota: {held}")

    # never more than max_runs in any window: a start counts for the hour after it
    times = [t for t, _ in starts]
    for i, t in enumerate(times):
        assert sum(1 for u in times[: i + 1] if u > t - HOUR) <= max_runs, starts

    # queued runs start in the order they asked, and every run that asked starts (all the
    # timers fired) unless cancelled while it waited
    queued = [d.run_id for d in _decisions(result, "queued")]
    cancelled = {d.run_id for d in _decisions(result, "cancelled")}
    started = [run for _, run in starts]
    assert [r for r in started if r in queued] == [
        r for r in dict.fromkeys(queued) if r not in cancelled or r in started
    ]
    created = {d.run_id for d in _decisions(result, "queued")} | set(started)
    assert all(r in started or r in cancelled for r in created)
    # a replay decides the same
    assert _starts(_replay(_catalog(max_runs, "1h"), log, partitions)) == starts


# --- queue, reject, dry run -----------------------------------------------------------------


def test_a_queued_run_starts_when_its_window_frees_and_says_why_meanwhile() -> None:
    catalog = _catalog(2, "1h")
    log: list[tuple[datetime, CloudEvent]] = [
        (T0, _go("a")),
        (T0 + timedelta(minutes=10), _go("b")),
        (T0 + timedelta(minutes=20), _go("c")),
    ]
    held = _replay(catalog, log, fire_timers=False)
    assert [run for _, run in _starts(held)] == ["p/a", "p/b"]
    (queued,) = _decisions(held, "queued")
    assert queued.run_id == "p/c"
    assert queued.reason.startswith("quota q: 2 runs of p per 1h reached")
    explained = explain(catalog, held.states[0], "p/c", "a")
    assert explained is not None
    assert explained.holds == (queued.reason,)
    assert [v.code for r in held.records for v in r.step.violations] == ["quota_queued"]
    (timer,) = [c for r in held.records for c in r.step.commands if isinstance(c, SetTimer)]
    assert timer.due == T0 + HOUR

    released = _replay(catalog, log)
    assert _starts(released)[2] == (T0 + HOUR, "p/c")


def test_the_queue_moves_when_a_request_comes_after_the_window_freed() -> None:
    """The timer may be late: a request decided after the window freed lets the queue go first."""
    catalog = _catalog(1, "1h")
    log: list[tuple[datetime, CloudEvent]] = [
        (T0, _go("a")),
        (T0 + timedelta(minutes=1), _go("b")),
        (T0 + timedelta(hours=2), _go("c")),
    ]
    result = _replay(catalog, log, fire_timers=False)
    assert _starts(result) == [(T0, "p/a"), (T0 + 2 * HOUR, "p/b")]
    assert _status(result, "c") == "queued"


def test_over_quota_reject_skips_the_run_and_dead_letters_the_event_with_the_policy() -> None:
    catalog = _catalog(1, "1d", over="reject")
    log: list[tuple[datetime, CloudEvent]] = [
        (T0, _go("a")),
        (T0 + HOUR, _go("b")),
        (T0 + timedelta(days=1, seconds=1), _go("c")),
    ]
    for partitions in (1, 3):
        result = _replay(catalog, log, partitions, fire_timers=False)
        assert [run for _, run in _starts(result)] == ["p/a", "p/c"]
        assert _status(result, "b") == "skipped"
        (rejection,) = [r.step.rejection for r in result.records if r.step.rejection]
        assert (rejection.code, rejection.policy) == ("quota_exceeded", "q")
        (rejected,) = _decisions(result, "rejected")
        assert rejected.run_id == "p/b"
        assert rejected.reason == "policy q: quota_exceeded: quota q: 1 run of p per 1d reached"
        violations = [v for r in result.records for v in r.step.violations]
        assert [(v.policy, v.code, v.enforced) for v in violations] == [
            ("q", "quota_exceeded", True)
        ]


def test_a_dry_run_quota_reports_what_it_would_hold_and_holds_nothing() -> None:
    catalog = _catalog(1, "1h", enforce=False)
    log: list[tuple[datetime, CloudEvent]] = [(T0, _go("a")), (T0 + timedelta(minutes=5), _go("b"))]
    result = _replay(catalog, log, 3)
    assert [run for _, run in _starts(result)] == ["p/a", "p/b"]
    (would,) = _decisions(result, "would_queue")
    assert would.run_id == "p/b"
    assert [v.enforced for r in result.records for v in r.step.violations] == [False]


def test_with_max_active_runs_both_hold_and_explain_names_what_holds() -> None:
    catalog = _catalog(3, "1h", max_active_runs=1)
    log: list[tuple[datetime, CloudEvent]] = [(T0, _go("a")), (T0 + timedelta(minutes=1), _go("b"))]
    result = _replay(catalog, log)
    assert _status(result, "b") == "queued"
    explained = explain(catalog, result.states[0], "p/b", "a")
    assert explained is not None
    assert explained.holds == ("max_active_runs 1 of pipeline p",)
    # the first run ends: the second takes its slot, within the quota
    done = _replay(catalog, [*log, (T0 + timedelta(minutes=2), _ok("a"))])
    assert [run for _, run in _starts(done)] == ["p/a", "p/b"]


def test_explain_on_another_partition_names_the_quota_it_waits_for() -> None:
    partitions = 4
    catalog = _catalog(1, "1h")
    keys = [f"k{n}" for n in range(40)]
    owner = partition_for("active/p", partitions)
    away = next(k for k in keys if partition_for(f"p/{k}", partitions) != owner)
    result = _replay(catalog, [(T0, _go("first")), (T0, _go(away))], partitions, fire_timers=False)
    state = result.states[partition_for(f"p/{away}", partitions)]
    explained = explain(catalog, state, f"p/{away}", "a")
    assert explained is not None
    assert _status(result, away) == "queued"
    assert explained.holds == ("quota q of pipeline p",)


def test_a_manual_retry_reactivates_a_run_without_counting_a_start() -> None:
    catalog = _catalog(1, "1h")
    failed = StageFailed(
        id="fail-a",
        source="x",
        data={"run_id": "p/a", "stage": "a", "attempt": 1, "retryable": False},
    )
    retry = StageRetry(id="retry-a", source="cli", data={"run_id": "p/a", "stage": "a"})
    log: list[tuple[datetime, CloudEvent]] = [
        (T0, _go("a")),
        (T0 + timedelta(minutes=1), failed),
        (T0 + timedelta(minutes=2), retry),
        (T0 + timedelta(minutes=3), _go("b")),
    ]
    result = _replay(catalog, log, fire_timers=False)
    assert _status(result, "a") == "active"
    assert _status(result, "b") == "queued"  # the retry took no start of the window


def test_a_quota_timer_no_longer_set_changes_nothing() -> None:
    catalog = _catalog(1, "1h")
    log: list[tuple[datetime, CloudEvent]] = [
        (T0, _go("a")),
        (T0 + timedelta(minutes=1), _go("b")),
        (T0 + timedelta(minutes=2), _cancel("b")),
    ]
    result = _replay(catalog, log, fire_timers=False)
    timers = [c for r in result.records for c in r.step.commands if isinstance(c, SetTimer)]
    (timer,) = [t for t in timers if t.timer_id.startswith("quota|")]
    state = result.states[0]
    assert [t for _, t, _ in state.timers() if t.startswith("quota|")] == []
    step = decide(catalog, state, timer.event, timer.due)
    assert step.commands == ()
    assert step.rejection is None
    # a pipeline the spec no longer has: nothing either
    other = Catalog.build(
        [
            Pipeline.model_validate(
                {
                    "name": "z",
                    "run_key": "'x'",
                    "triggers": [{"kind": "manual"}],
                    "stages": [{"name": "a"}],
                }
            )
        ]
    )
    assert decide(other, CoordinatorState.empty(), timer.event, timer.due).commands == ()


def test_the_quota_timer_lands_on_the_partition_that_keeps_the_books() -> None:
    partitions = 5
    catalog = _catalog(1, "1h")
    log: list[tuple[datetime, CloudEvent]] = [(T0, _go("a")), (T0, _go("b"))]
    result = _replay(catalog, log, partitions, fire_timers=False)
    (timer,) = [
        c
        for r in result.records
        for c in r.step.commands
        if isinstance(c, SetTimer) and c.timer_id.startswith("quota|")
    ]
    where = partition_for(partition_key_for(timer.event), partitions)
    assert where == partition_for("active/p", partitions)
    assert [t for _, t, _ in result.states[where].timers()] == [timer.timer_id]


def test_two_quotas_on_one_pipeline_both_must_have_room() -> None:
    per_hour = QuotaPolicy.model_validate(
        {"kind": "quota", "name": "hourly", "pipeline": "p", "max_runs": 2, "window": "1h"}
    )
    per_day = QuotaPolicy.model_validate(
        {"kind": "quota", "name": "daily", "pipeline": "p", "max_runs": 3, "window": "1d"}
    )
    catalog = Catalog.build(
        [
            Pipeline.model_validate(
                {
                    "name": "p",
                    "run_key": "event.data.key",
                    "triggers": [{"kind": "event", "type": "go"}],
                    "stages": [{"name": "a"}],
                }
            )
        ],
        policies=[per_hour, per_day],
    )
    log: list[tuple[datetime, CloudEvent]] = [
        (T0 + timedelta(minutes=n), _go(f"k{n}")) for n in range(4)
    ]
    result = _replay(catalog, log, 3, fire_timers=False)
    assert [run for _, run in _starts(result)] == ["p/k0", "p/k1"]
    # a request after the hour freed lets one more start; the fourth waits for the day
    later = _replay(catalog, [*log, (T0 + timedelta(hours=2), _go("k9"))], 3, fire_timers=False)
    assert _starts(later) == [
        (T0, "p/k0"),
        (T0 + timedelta(minutes=1), "p/k1"),
        (T0 + timedelta(hours=2), "p/k2"),
    ]
    (owner,) = [s for s in later.states if s.misc("pipe/p") and "starts" in s.misc("pipe/p")]
    held = owner.misc("pipe/p")
    assert held is not None
    assert held["waiting"] == ["p/k3", "p/k9"]
    assert held["quota_held"].startswith("quota daily: 3 runs of p per 1d reached")


def test_the_books_keep_only_the_starts_a_window_can_count() -> None:
    catalog = _catalog(2, "1h", enforce=False)
    log: list[tuple[datetime, CloudEvent]] = [
        (T0 + timedelta(minutes=n), _go(f"k{n}")) for n in range(6)
    ]
    result = _replay(catalog, log, fire_timers=False)
    assert len(_starts(result)) == 6
    books = result.states[0].misc("pipe/p")
    assert books is not None
    assert len(books["starts"]) == 2
    assert len(_decisions(result, "would_queue")) == 4
