"""Every metric streamcoord records, defined once; callers just use them.

::

    from streamcoord.telemetry import metrics
    metrics.events_consumed.add(1, {"type": event.type})
    metrics.decision_duration.record(elapsed_seconds)

The module-level instruments come from the global meter provider: they record nothing until
``configure_metrics()`` installs one (with a Prometheus scrape endpoint), and then everything
recorded shows up there. ``Instruments(meter)`` builds the same set on any meter (tests).

Prometheus names replace dots by underscores and add the unit, e.g. ``streamcoord.events.consumed``
is scraped as ``streamcoord_events_consumed_total``, ``streamcoord.decision.duration`` (seconds)
as ``streamcoord_decision_duration_seconds_bucket/_sum/_count``.
"""

from __future__ import annotations

from opentelemetry import metrics as metrics_api
from opentelemetry.metrics import Counter, Histogram, Meter, UpDownCounter

# The API still exports its synchronous gauge under a private name (as of 1.45).
from opentelemetry.metrics import _Gauge as Gauge

__all__ = [
    "FAST_BUCKETS",
    "GLOBAL_INSTRUMENTS",
    "METER_NAME",
    "SLOW_BUCKETS",
    "Instruments",
    "active_runs",
    "consumer_lag",
    "dead_letters",
    "decision_duration",
    "event_to_trigger_latency",
    "events_consumed",
    "events_forwarded",
    "policy_violations",
    "restore_duration",
    "stage_duration",
    "stage_outcomes",
    "triggers_published",
]

METER_NAME = "streamcoord"

#: Seconds, for work done in-process (a decision): 100 us to 1 s.
FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
#: Seconds, for work spanning processes or humans (latency, stages, restores): 5 ms to 1 h.
SLOW_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class Instruments:
    """The full set of streamcoord instruments on one meter.

    Attribute keys to use (low cardinality only; never run ids): ``type`` (event type),
    ``pipeline``, ``stage``, ``outcome``, ``reason``, ``topic``, ``partition``.
    """

    def __init__(self, meter: Meter) -> None:
        self.events_consumed: Counter = meter.create_counter(
            "streamcoord.events.consumed", "{event}", "Events consumed, by type"
        )
        self.decision_duration: Histogram = meter.create_histogram(
            "streamcoord.decision.duration",
            "s",
            "Time the core took to decide on one event",
            explicit_bucket_boundaries_advisory=FAST_BUCKETS,
        )
        self.event_to_trigger_latency: Histogram = meter.create_histogram(
            "streamcoord.trigger.latency",
            "s",
            "From an event's time to the trigger it caused being published",
            explicit_bucket_boundaries_advisory=SLOW_BUCKETS,
        )
        self.triggers_published: Counter = meter.create_counter(
            "streamcoord.triggers.published", "{trigger}", "Stage triggers published"
        )
        self.stage_outcomes: Counter = meter.create_counter(
            "streamcoord.stage.outcomes", "{outcome}", "Stage attempts finished, by outcome"
        )
        self.stage_duration: Histogram = meter.create_histogram(
            "streamcoord.stage.duration",
            "s",
            "Stage attempt duration, trigger to outcome",
            explicit_bucket_boundaries_advisory=SLOW_BUCKETS,
        )
        self.active_runs: UpDownCounter = meter.create_up_down_counter(
            "streamcoord.runs.active", "{run}", "Runs started and not yet finished"
        )
        self.dead_letters: Counter = meter.create_counter(
            "streamcoord.dead_letters", "{event}", "Records sent to the dead-letter topic"
        )
        self.policy_violations: Counter = meter.create_counter(
            "streamcoord.policy.violations",
            "{event}",
            "Events that broke a policy, by policy, reason and whether it was enforced"
            " (enforce: false counts what a dry run would have rejected)",
        )
        self.events_forwarded: Counter = meter.create_counter(
            "streamcoord.events.forwarded",
            "{event}",
            "Events a producer put on another partition than their run's, forwarded there",
        )
        self.consumer_lag: Gauge = meter.create_gauge(
            "streamcoord.consumer.lag", "{message}", "Records behind the end, per partition"
        )
        self.restore_duration: Histogram = meter.create_histogram(
            "streamcoord.restore.duration",
            "s",
            "Time to restore state from the changelog after an assignment",
            explicit_bucket_boundaries_advisory=SLOW_BUCKETS,
        )


# Bound to the global provider through the API's proxy meter: real once one is installed.
_global = Instruments(metrics_api.get_meter(METER_NAME))
#: The instruments on the global provider, for code that takes an ``Instruments``.
GLOBAL_INSTRUMENTS = _global

events_consumed = _global.events_consumed
decision_duration = _global.decision_duration
event_to_trigger_latency = _global.event_to_trigger_latency
triggers_published = _global.triggers_published
stage_outcomes = _global.stage_outcomes
stage_duration = _global.stage_duration
active_runs = _global.active_runs
dead_letters = _global.dead_letters
events_forwarded = _global.events_forwarded
policy_violations = _global.policy_violations
consumer_lag = _global.consumer_lag
restore_duration = _global.restore_duration
