"""The markdown table of one benchmark run."""

from __future__ import annotations

from typing import Any

from bench import user_path
from bench.state_size import markdown_rows


def markdown(r: dict[str, Any]) -> str:
    baselines = r["baselines"]
    base, txn = baselines["passthrough"], baselines["passthrough_txn"]
    send, send_txn = baselines["passthrough_send"], baselines["passthrough_send_txn"]
    one = r["throughput"][0]

    def rate(d: dict[str, Any]) -> float:
        return float(d["events_per_s"])

    lines = [
        f"Run {r['date']} on {r['machine']}; load average at start {r['load_start']}, "
        f"at end {r['load_end']}; {r['partitions']} partitions, batches of {r['max_batch']}, "
        f"exactly-once on; broker warmed up for {r.get('warm_up_s', 0):.0f} s first; "
        f"{r['seconds']:.0f} s in all.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| passthrough, plain, record batches (events/s) | {rate(base):,.0f} | |",
        f"| passthrough, transactional, record batches (events/s) | {rate(txn):,.0f} | |",
        f"| passthrough, plain, one send() per record (events/s) | {rate(send):,.0f} | |",
        f"| passthrough, transactional, one send() per record (events/s) | {rate(send_txn):,.0f} "
        "| |",
    ]
    lines.extend(
        f"| {t['processes']} coordinator process(es): events decided/s; stage transitions/s "
        f"({t['events']:,} events, {t['triggers']:,} triggers in {t['seconds']:.1f} s) | "
        f"{rate(t):,.0f}; {t['transitions_per_s']:,.0f} | "
        + ("≥ 10,000 transitions/s" if t["processes"] == 1 else "")
        + " |"
        for t in r["throughput"]
    )
    lines += [
        f"| 1 process ÷ plain passthrough, record batches / one send() each (events/s ÷ events/s)"
        f" | {rate(one) / rate(base):.2f} / {rate(one) / rate(send):.2f} | ≥ 0.5 |",
        f"| 1 process ÷ transactional passthrough, record batches / one send() each | "
        f"{rate(one) / rate(txn):.2f} / {rate(one) / rate(send_txn):.2f} | |",
    ]
    for lat in r["latency"]:
        target = " (≤ 10 / ≤ 50 p99)" if lat["label"] == "light" else ""
        lines.append(
            f"| event→trigger latency, {lat['label']} ({lat['achieved_handoffs_per_s']:,.0f} "
            f"hand-offs/s, n={lat.get('n', 0):,}): p50 / p95 / p99 / max ms | "
            f"{lat.get('p50_ms', 0):.1f} / {lat.get('p95_ms', 0):.1f} / {lat.get('p99_ms', 0):.1f}"
            f" / {lat.get('max_ms', 0):.1f} | {target} |"
        )
    rec = r["recovery"]
    lines += [
        f"| restore {rec['restored_runs']:,} runs and process the first batch (s) | "
        f"{rec['start_to_first_batch_s']:.2f} (restored at {rec['start_to_restored_s']:.2f})"
        " | ≤ 10 |",
        f"| resident memory per 10,000 active runs (MB) | {rec['rss_mb_per_10k_runs']:.1f} | |",
    ]
    if "state_size" in r:  # results from before retention have none
        lines += markdown_rows(r["state_size"])
    if "user_path" in r:  # the path a user feels: emitter API -> coordinator -> worker
        lines += user_path.markdown_rows(r["user_path"])
    if "clients" in r:  # results from before the second Kafka client have none
        lines += ["", "The Kafka clients side by side:", "", *client_rows(r["clients"])]
    return "\n".join(lines) + "\n"


def clients_markdown(r: dict[str, Any]) -> str:
    """The two Kafka clients side by side (``results["clients"]``)."""
    lines = [
        f"Run {r['date']} on {r['machine']}; load average at start {r['load_start']}, "
        f"at end {r['load_end']}; {r['partitions']} partitions, batches of {r['max_batch']}, "
        "exactly-once on.",
        "",
        *client_rows(r["clients"]),
    ]
    return "\n".join(lines) + "\n"


def client_rows(clients: dict[str, Any]) -> list[str]:
    """Per client: its exactly-once passthrough through the ports, one coordinator process on
    it, the coordinator's share of the passthrough, and the light-load latency."""
    rows = [
        "| client | passthrough through the ports (events/s; µs/event) | one coordinator "
        "(events/s; µs/event) | coordinator / passthrough | light load p50 / p99 (ms) |",
        "|---|---|---|---|---|",
    ]
    for name, c in clients.items():
        passthrough, coordinator, light = c["passthrough"], c["coordinator"], c["light"]
        rows.append(
            f"| {name} | {passthrough['events_per_s']:,.0f}; {c['passthrough_us_per_event']:.1f} "
            f"| {coordinator['events_per_s']:,.0f}; {c['coordinator_us_per_event']:.1f} "
            f"| {c['coordinator_to_passthrough']:.2f} "
            f"| {light.get('p50_ms', 0):.1f} / {light.get('p99_ms', 0):.1f} |"
        )
    return rows
