"""deploy/Containerfile: one multi-stage, non-root image for every role, with a HEALTHCHECK on
/healthz. Built and smoke-tested where a container engine answers (podman or Docker);
skipped with the reason elsewhere. The static checks run everywhere."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kafka_fixtures import docker_answers

ROOT = Path(__file__).parents[3]
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
BUILD_TIMEOUT = 1800


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", CONTAINERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_the_image_is_multi_stage_from_a_slim_python() -> None:
    bases = [rest for keyword, rest in _instructions() if keyword == "FROM"]
    assert len(bases) >= 2
    assert all(re.match(r"python:\$\{PYTHON_VERSION\}-slim\b", base) for base in bases), bases
    copies = [rest for keyword, rest in _final_stage() if keyword == "COPY"]
    assert copies == ["--from=build /opt/streamcoord /opt/streamcoord"]


def test_the_image_runs_as_a_non_root_user() -> None:
    users = [rest for keyword, rest in _final_stage() if keyword == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric uid lets Kubernetes verify runAsNonRoot"
    assert int(uid) != 0


def test_the_healthcheck_asks_healthz_of_the_running_role() -> None:
    (check,) = [rest for keyword, rest in _final_stage() if keyword == "HEALTHCHECK"]
    assert 'CMD ["python", "-m", "streamcoord.deploy.healthcheck"]' in check
    source = (ROOT / "streamcoord" / "deploy" / "healthcheck.py").read_text()
    assert "/healthz" in source


def test_nothing_is_fetched_when_the_container_runs() -> None:
    final = _final_stage()
    entrypoint = [rest for keyword, rest in final if keyword == "ENTRYPOINT"]
    assert entrypoint == ['["streamcoord"]']
    for keyword, rest in _instructions():
        assert not (keyword == "ADD" and re.search(r"https?://", rest)), rest
    for keyword, rest in final:
        if keyword == "RUN":
            assert not re.search(r"\b(pip|curl|wget|apt-get)\b", rest), rest


def _engine() -> str | None:
    """podman or docker, whichever answers first (buildah alone builds but cannot run it)."""
    for name in ("podman", "docker"):
        path = shutil.which(name)
        if path is None or (name == "docker" and not docker_answers()):
            continue
        try:
            answered = subprocess.run([path, "info"], capture_output=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            continue
        if answered.returncode == 0:
            return path
    return None


@pytest.fixture(scope="module")
def image() -> Iterator[tuple[str, str]]:
    """(engine, tag) of the image built from deploy/Containerfile; removed afterwards."""
    engine = _engine()
    if engine is None:
        pytest.skip("no container engine answers here (podman, or a Docker daemon)")
    tag = f"localhost/streamcoord-test:{uuid.uuid4().hex[:12]}"
    build = [engine, "build", "-f", str(CONTAINERFILE), "-t", tag, str(ROOT)]
    subprocess.run(build, check=True, timeout=BUILD_TIMEOUT)
    try:
        yield engine, tag
    finally:
        subprocess.run([engine, "rmi", "-f", tag], capture_output=True, check=False)


def _run(engine: str, *args: str) -> str:
    result = subprocess.run(
        [engine, "run", "--rm", "--network", "none", "--read-only", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_built_image_runs_every_role_as_a_non_root_user(image: tuple[str, str]) -> None:
    engine, tag = image
    assert "streamcoord" in _run(engine, tag, "--version")
    assert _run(engine, "--entrypoint", "id", tag, "-u").strip() == "10001"
    for role in ("run", "worker", "serve", "ingest"):
        assert "Usage" in _run(engine, tag, role, "--help")
    validated = _run(engine, tag, "topics", "render", "--cluster", "c")
    assert "kind: KafkaTopic" in validated
