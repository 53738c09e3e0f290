"""streamcoord.devtools.helm: helm built from the Go module proxy once, then from the cache."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from streamcoord.devtools.helm import DEFAULT_HELM_VERSION, binary_path, build_helm, helm_cached
from streamcoord.errors import EnvironmentProblem


def test_binary_lives_in_the_cache_per_version(tmp_path: Path) -> None:
    assert binary_path("v9.9.9", cache=tmp_path) == tmp_path / "helm/v9.9.9/helm"
    assert not helm_cached("v9.9.9", cache=tmp_path)


def test_build_answers_from_the_cache_without_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    target = binary_path("v1.0.0", cache=tmp_path)
    target.parent.mkdir(parents=True)
    target.write_text("#!/bin/sh\n")
    target.chmod(0o755)
    assert build_helm("v1.0.0", cache=tmp_path) == target


def test_a_build_without_go_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(EnvironmentProblem, match="`go` was not found"):
        build_helm("v1.0.0", cache=tmp_path)


def test_the_built_helm_reports_its_major_version(helm: Path) -> None:
    shown = subprocess.run(
        [str(helm), "version", "--short"], capture_output=True, text=True, timeout=60, check=True
    )
    assert shown.stdout.startswith(DEFAULT_HELM_VERSION.rsplit(".", 1)[0])
