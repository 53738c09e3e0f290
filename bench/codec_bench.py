"""Per-event cost of the CloudEvents codec: ``python bench/codec_bench.py [--n 50000]``."""

from __future__ import annotations

import argparse
import functools
import timeit
from collections.abc import Callable

from streamcoord.events import decode, encode, make_event

EXTERNAL = make_event(
    "com.example.dataset.landed",
    "/lake/ingest",
    {"dataset": "clicks", "partition": "2024-05-01T03", "rows": 1234567, "path": "s3://b/k"},
    id="7f1c3e2a-0b6d-4a43-9d2e-3f8f3a1c9e11",
    subject="clicks/2024-05-01T03",
    traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
)
OWN = make_event(
    "streamcoord.stage.succeeded",
    "/executor/spark",
    {"run_id": "daily/2024-05-01", "stage": "transform", "attempt": 1, "outputs": {"rows": 42}},
    id="b3c6e0f4-5d1a-4f7e-8a9b-0c1d2e3f4a5b",
)


def per_call_us(fn: Callable[[], object], n: int) -> float:
    """Best of three runs of ``n`` calls, in microseconds per call."""
    return min(timeit.repeat(fn, number=n, repeat=3)) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=50_000)
    n = parser.parse_args().n
    for label, event in (("external", EXTERNAL), ("streamcoord", OWN)):
        for mode in ("structured", "binary"):
            value, headers = encode(event, mode)
            dec = per_call_us(functools.partial(decode, value, headers), n)
            enc = per_call_us(functools.partial(encode, event, mode), n)
            print(
                f"{label:12} {mode:10} {len(value):4d} B value  "
                f"decode {dec:6.2f} us  encode {enc:6.2f} us"
            )


if __name__ == "__main__":
    main()
