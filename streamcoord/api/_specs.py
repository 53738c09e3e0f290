"""The specs the API shows: the newest loaded version's pipeline models, and every loaded
version's catalog (a run follows the version it started with, which ``explain`` needs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from streamcoord.core import Catalog, CatalogSet
from streamcoord.errors import SpecError
from streamcoord.pipelines.models import Pipeline, Pool
from streamcoord.pipelines.validation import DEFAULT_TOPICS_FILE, validate_paths, validate_texts
from streamcoord.runtime.specs import SpecsFollower

__all__ = ["FollowedSpecs", "LocalSpecs", "SpecView", "SpecViews"]


@dataclass(frozen=True)
class SpecView:
    """One spec version as loaded: its pipelines and pools as written, and its version."""

    version: str
    pipelines: tuple[Pipeline, ...]
    pools: tuple[Pool, ...]

    def pipeline(self, name: str) -> Pipeline | None:
        return next((p for p in self.pipelines if p.name == name), None)


class SpecViews(Protocol):
    """Where the API gets its specs from."""

    def newest(self) -> SpecView:
        """The version new runs use."""
        ...

    def catalogs(self) -> CatalogSet:
        """Every loaded version, compiled."""
        ...


def _view(pipelines: Sequence[Pipeline], pools: Sequence[Pool], version: str) -> SpecView:
    return SpecView(version, tuple(sorted(pipelines, key=lambda p: p.name)), tuple(pools))


class LocalSpecs:
    """Spec files (``serve --spec PATH``), checked as ``streamcoord validate`` checks them."""

    def __init__(
        self, paths: Sequence[Path | str], *, topics_file: Path | str | None = DEFAULT_TOPICS_FILE
    ) -> None:
        report = validate_paths(paths, topics_file=topics_file)
        if not report.ok:
            listing = "\n".join(str(problem) for problem in report.problems)
            raise SpecError(f"the specs do not validate:\n{listing}",
                            hint="`streamcoord validate PATH...` shows the same list")  # fmt: skip
        self._catalog = Catalog.build(
            report.specs.pipelines, report.specs.pools, policies=report.specs.policies
        )
        self._view = _view(report.specs.pipelines, report.specs.pools, self._catalog.version)

    def newest(self) -> SpecView:
        return self._view

    def catalogs(self) -> CatalogSet:
        return CatalogSet.of(self._catalog)


class FollowedSpecs:
    """What ``streamcoord specs apply`` published, followed as the coordinator follows it."""

    def __init__(self, follower: SpecsFollower) -> None:
        self.follower = follower
        self._views: dict[str, SpecView] = {}

    def newest(self) -> SpecView:
        record = self.follower.newest
        if record is None:
            raise SpecError("no spec version is loaded yet")
        view = self._views.get(record.version)
        if view is None:
            report = validate_texts(record.files)
            view = _view(report.specs.pipelines, report.specs.pools, record.version)
            self._views = {record.version: view}
        return view

    def catalogs(self) -> CatalogSet:
        return self.follower.current()
