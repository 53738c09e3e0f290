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

from streamcoord.devtools._go import go_install
from streamcoord.devtools.kafka import cache_root

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
    return go_install(HELM_PACKAGE, version, "helm", target, progress)
