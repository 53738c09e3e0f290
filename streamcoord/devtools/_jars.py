"""Apache Kafka's broker jars, fetched from Maven Central with Maven once and cached.

A POM lists the broker (``kafka_2.13``) and the logging backend of its line; Maven copies the
runtime dependencies into ``<cache>/kafka/<version>/libs``; a marker file records completion.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from streamcoord.devtools._cache_lock import exclusive
from streamcoord.errors import EnvironmentProblem

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "SUPPORTED_KAFKA_VERSIONS",
    "cache_root",
    "jars_cached",
    "major",
    "render_pom",
    "require_tool",
    "resolve_jars",
]

DEFAULT_KAFKA_VERSION = "4.4.0"
SUPPORTED_KAFKA_VERSIONS = ("4.4.0", "3.9.2")

# The broker POM does not bring a logging backend; the distribution ships one per line.
_LOGGING_BACKEND: dict[str, tuple[tuple[str, str, str], ...]] = {
    "3": (
        ("org.slf4j", "slf4j-reload4j", "1.7.36"),
        ("ch.qos.reload4j", "reload4j", "1.2.25"),
    ),
    # 4.x already depends on log4j-core; slf4j-api is still 1.7.x, so the 1.x bridge applies.
    "4": (("org.apache.logging.log4j", "log4j-slf4j-impl", "2.25.5"),),
}

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.streamcoord</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""

_DEPENDENCY = (
    "    <dependency><groupId>{0}</groupId><artifactId>{1}</artifactId>"
    "<version>{2}</version></dependency>"
)


def cache_root() -> Path:
    """Where jars and broker data live unless told otherwise (``STREAMCOORD_CACHE`` overrides)."""
    explicit = os.environ.get("STREAMCOORD_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "streamcoord"


def major(version: str) -> str:
    return version.split(".", 1)[0]


def require_tool(name: str, what_for: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise EnvironmentProblem(
            f"`{name}` was not found on PATH; it is needed to {what_for}",
            hint="install Java 17 and Maven (e.g. `apt-get install openjdk-17-jre-headless maven`);"
            " tests can use a running broker instead via STREAMCOORD_TEST_BOOTSTRAP",
        )
    return path


def _check_supported(version: str) -> None:
    if major(version) not in _LOGGING_BACKEND:
        raise EnvironmentProblem(
            f"Kafka {version} is not a supported line",
            hint=f"use one of {', '.join(SUPPORTED_KAFKA_VERSIONS)}",
        )


def _libs_dir(version: str, cache: Path | None) -> Path:
    return (cache or cache_root()) / "kafka" / version / "libs"


def jars_cached(version: str = DEFAULT_KAFKA_VERSION, *, cache: Path | None = None) -> bool:
    """True when ``resolve_jars`` will answer from the cache, with no Maven run."""
    return (_libs_dir(version, cache) / ".complete").exists()


def render_pom(version: str) -> str:
    """The POM whose runtime dependencies are the broker of ``version`` plus a logging backend."""
    _check_supported(version)
    deps = [("org.apache.kafka", "kafka_2.13", version), *_LOGGING_BACKEND[major(version)]]
    return _POM.format(
        version=version, dependencies="\n".join(_DEPENDENCY.format(*d) for d in deps)
    )


def resolve_jars(version: str = DEFAULT_KAFKA_VERSION, *, cache: Path | None = None) -> Path:
    """Return a directory holding the broker's runtime jars, fetching them with Maven once."""
    _check_supported(version)
    libs = _libs_dir(version, cache)
    if jars_cached(version, cache=cache):
        return libs
    # One Maven at a time: two versions' fetches share artifacts in Maven's local repository.
    with exclusive(libs.parent.parent / "maven"):
        if jars_cached(version, cache=cache):  # another session fetched them while we waited
            return libs
        return _fetch(version, libs)


def _fetch(version: str, libs: Path) -> Path:
    mvn = require_tool("mvn", "fetch Apache Kafka's jars")
    libs.mkdir(parents=True, exist_ok=True)
    pom = libs.parent / "pom.xml"
    pom.write_text(render_pom(version))
    command = [
        mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={libs}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
        raise EnvironmentProblem(
            f"Maven could not fetch Kafka {version}'s jars:\n{tail}",
            hint="check that Maven reaches its central repository, then run again",
        )
    if not any(libs.glob(f"kafka_2.13-{version}.jar")):
        raise EnvironmentProblem(
            f"Maven finished but kafka_2.13-{version}.jar is missing in {libs}",
            hint=f"remove {libs.parent} and run again",
        )
    (libs / ".complete").write_text(version)
    return libs
