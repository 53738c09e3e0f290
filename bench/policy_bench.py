"""What policies cost per decided event: signature check, contract, and the whole ``decide``
(not a test).

Run: ``.venv/bin/python bench/policy_bench.py [--repeat N]``.

Each figure is CPU time (``time.process_time``) per call, the best of ``--repeat`` rounds of
2,000 calls: the event's canonical bytes, one Ed25519 verification, and ``decide`` on a trigger
event that starts one run, with no policy, with an emit policy requiring a signature, with a
JSON Schema contract, and with a quota on the pipeline's runs (with room: the run is counted
and starts).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import TypeAdapter

from streamcoord.core import Catalog, CoordinatorState, decide
from streamcoord.events.models import CloudEvent, ExternalEvent
from streamcoord.events.signing import canonical_bytes, public_key_text, sign_event, verify_event
from streamcoord.pipelines.models import Pipeline, Policy

NOW = datetime(2026, 1, 5, tzinfo=UTC)
CALLS = 2000
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PIPELINE = Pipeline.model_validate(
    {
        "name": "orders",
        "run_key": "event.data.day",
        "triggers": [{"kind": "event", "type": "order.placed"}],
        "stages": [{"name": "load"}],
    }
)
POLICIES: dict[str, dict[str, object]] = {
    "emit": {
        "kind": "emit",
        "name": "e",
        "types": ["order.placed"],
        "principals": ["erp"],
        "require_signature": True,
        "keys": {"erp": public_key_text(KEY)},
    },
    "contract": {
        "kind": "contract",
        "name": "c",
        "type": "order.placed",
        "schema": {
            "type": "object",
            "required": ["day", "amount"],
            "properties": {"day": {"type": "string"}, "amount": {"type": "number", "minimum": 0}},
        },
    },
    "quota": {
        "kind": "quota",
        "name": "q",
        "pipeline": "orders",
        "max_runs": 1000,
        "window": "1h",
    },
}


def _per_call(work: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(CALLS):
            work()
        best = min(best, time.process_time() - start)
    return best / CALLS * 1e6


def _decide_one(catalog: Catalog, event: CloudEvent) -> object:
    return decide(catalog, CoordinatorState.empty(), event, NOW)


def main(repeat: int) -> None:
    event = sign_event(
        ExternalEvent(
            id="o1", source="erp/eu", type="order.placed", data={"day": "2026-01-05", "amount": 5}
        ),
        KEY,
        "erp",
    )
    public = KEY.public_key()
    print(f"canonical bytes      {_per_call(lambda: canonical_bytes(event), repeat):8.1f} us")
    print(f"Ed25519 verification {_per_call(lambda: verify_event(event, public), repeat):8.1f} us")
    adapter: TypeAdapter[Policy] = TypeAdapter(Policy)
    for name, policies in [
        ("none", []),
        ("emit", [POLICIES["emit"]]),
        ("contract", [POLICIES["contract"]]),
        ("quota", [POLICIES["quota"]]),
    ]:
        catalog = Catalog.build([PIPELINE], policies=[adapter.validate_python(p) for p in policies])
        cost = _per_call(functools.partial(_decide_one, catalog, event), repeat)
        print(f"decide, policy {name:<6}{cost:8.1f} us")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[args.index("--repeat") + 1]) if "--repeat" in args else 5)
