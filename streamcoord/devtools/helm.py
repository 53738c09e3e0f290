"""Helm on one machine, built from the Go module proxy with the local Go toolchain.

``build_helm`` runs ``go install helm.sh/helm/v3/cmd/helm@<version>`` once with ``GOBIN`` in the
cache and keeps the binary as ``<cache>/helm/<version>/helm``; later runs reuse it with no
network (as ``streamcoord.devtools.toxiproxy`` does for toxiproxy). The chart's tests run
``helm lint`` and ``helm template`` with it; nothing here talks to a cluster. The first build
took about 5 minutes on 2 shared cores (110 MB binary). Built this way helm carries no
Kubernetes version of its own (the release build sets one with ``-ldflags``), so ``helm
template`` needs ``--kube-version`` for a chart that declares ``kubeVersion``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from streamcoord.devtools._process import follow_command
from streamcoord.devtools.jaeger import require_go
from streamcoord.devtools.kafka import cache_root
from streamcoord.errors import EnvironmentProblem

__all__ = ["DEFAULT_HELM_VERSION", "HELM_PACKAGE", "binary_path", "build_helm", "helm_cached"]

DEFAULT_HELM_VERSION = "v3.22.0"
HELM_PACKAGE = "helm.sh/helm/v3/cmd/helm"

Progress = Callable[[str], None]


def _no_progress(line: str) -> None:
    """Progress sink that drops every line."""


def binary_path(version: str = DEFAULT_HELM_VERSION, *, cache: Path | None = None) -> Path:
    """Where the built helm of ``version`` lives (whether or not it exists yet)."""
    return (cache or cache_root()) / "helm" / version / "helm"


def helm_cached(version: str = DEFAULT_HELM_VERSION, *, cache: Path | None = None) -> bool:
    """True when ``build_helm`` will answer from the cache, with no Go run."""
    return os.access(binary_path(version, cache=cache), os.X_OK)


def build_helm(
    version: str = DEFAULT_HELM_VERSION,
    *,
    cache: Path | None = None,
    progress: Progress = _no_progress,
) -> Path:
    """Return the path of a helm binary, building it with Go the first time.

    ``progress`` receives each line Go prints; the full output also goes to ``build.log`` next
    to the binary.
    """
    target = binary_path(version, cache=cache)
    if helm_cached(version, cache=cache):
        return target
    go = require_go()
    gobin = target.parent / f"gobin-{os.getpid()}"
    gobin.mkdir(parents=True, exist_ok=True)
    log = target.parent / "build.log"
    command = [go, "install", "-v", f"{HELM_PACKAGE}@{version}"]
    with log.open("w") as out:
        code, tail = follow_command(
            command, cwd=target.parent, out=out, progress=progress,
            env={**os.environ, "GOBIN": str(gobin)},
        )  # fmt: skip
    if code != 0:
        raise EnvironmentProblem(
            "`go install` of helm failed:\n" + "\n".join(tail),
            hint=f"read {log}; check that Go reaches its module proxy",
        )
    # A rename is atomic: an interrupted build never leaves a half-written binary behind.
    (gobin / "helm").replace(target)
    gobin.rmdir()
    return target
