"""Building a Go command from the Go module proxy into streamcoord's cache (helm, toxiproxy)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from streamcoord.devtools._cache_lock import exclusive
from streamcoord.devtools._process import follow_command
from streamcoord.devtools.jaeger import require_go
from streamcoord.errors import EnvironmentProblem

__all__ = ["go_install"]


def go_install(
    package: str, version: str, built: str, target: Path, progress: Callable[[str], None]
) -> Path:
    """``go install package@version`` and move the binary ``built`` to ``target``.

    ``progress`` receives each line Go prints; the full output goes to ``build.log`` next to
    ``target``.
    """
    with exclusive(target):
        if target.exists():  # another session built it while we waited
            return target
        return _install(package, version, built, target, progress)


def _install(
    package: str, version: str, built: str, target: Path, progress: Callable[[str], None]
) -> Path:
    go = require_go()
    gobin = target.parent / f"gobin-{os.getpid()}"
    gobin.mkdir(parents=True, exist_ok=True)
    log = target.parent / "build.log"
    command = [go, "install", "-v", f"{package}@{version}"]
    with log.open("w") as out:
        code, tail = follow_command(
            command, cwd=target.parent, out=out, progress=progress,
            env={**os.environ, "GOBIN": str(gobin)},
        )  # fmt: skip
    if code != 0:
        raise EnvironmentProblem(
            f"`go install` of {package} failed:\n" + "\n".join(tail),
            hint=f"read {log}; check that Go reaches its module proxy",
        )
    # A rename is atomic: an interrupted build never leaves a half-written binary behind.
    (gobin / built).replace(target)
    gobin.rmdir()
    return target
