"""One builder at a time per cached tool: two test sessions (the two Kafka legs of `make test`)
may need the same broker jars, Jaeger or helm at once on an empty cache."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["exclusive"]


@contextmanager
def exclusive(target: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<target>.lock`` (waiting for another process that holds it).

    Callers check again inside the block whether the other process already built ``target``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.with_name(f"{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
