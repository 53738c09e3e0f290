"""The markdown table of one benchmark run."""

from __future__ import annotations

from typing import Any


def markdown(r: dict[str, Any]) -> str:
    base, txn = r["baselines"]["passthrough"], r["baselines"]["passthrough_txn"]
    one = r["throughput"][0]
    rate = lambda d: d["events_per_s"]  # noqa: E731
    lines = [
        f"Run {r['date']} on {r['machine']}; load average at start {r['load_start']}, "
        f"at end {r['load_end']}; {r['partitions']} partitions, batches of {r['max_batch']}, "
        f"exactly-once on; {r['seconds']:.0f} s in all.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| passthrough, plain (events/s) | {rate(base):,.0f} | |",
        f"| passthrough, transactional (events/s) | {rate(txn):,.0f} | |",
    ]
    for t in r["throughput"]:
        lines.append(
            f"| {t['processes']} coordinator process(es): events decided/s; stage transitions/s "
            f"({t['events']:,} events, {t['triggers']:,} triggers in {t['seconds']:.1f} s) | "
            f"{rate(t):,.0f}; {t['transitions_per_s']:,.0f} | "
            + ("≥ 10,000 transitions/s" if t["processes"] == 1 else "") + " |"
        )
    lines += [
        f"| 1 process ÷ plain passthrough (events/s ÷ events/s) | {rate(one) / rate(base):.2f} "
        "| ≥ 0.5 |",
        f"| 1 process ÷ transactional passthrough | {rate(one) / rate(txn):.2f} | |",
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
        f"{rec['start_to_first_batch_s']:.2f} (restored at {rec['start_to_restored_s']:.2f}) | ≤ 10 |",
        f"| resident memory per 10,000 active runs (MB) | {rec['rss_mb_per_10k_runs']:.1f} | |",
    ]
    return "\n".join(lines) + "\n"
