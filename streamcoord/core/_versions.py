"""Spec versions: a content hash of a spec set, and the set of compiled versions one
coordinator has loaded (see :class:`CatalogSet` and the core docstring for the rules)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streamcoord.errors import SpecError
from streamcoord.pipelines.models import (
    ContractPolicy,
    EmitPolicy,
    GuardPolicy,
    Pipeline,
    Policy,
    Pool,
    QuotaPolicy,
)

if TYPE_CHECKING:
    from streamcoord.core._catalog import Catalog

__all__ = ["CatalogSet", "spec_version"]


def spec_version(
    pipelines: Sequence[Pipeline], pools: Sequence[Pool] = (), policies: Sequence[Policy] = ()
) -> str:
    """``sha256:`` and 16 hex digits of the canonical JSON of the specs, sorted by name.

    Canonical: the models' JSON form without the values equal to their defaults (so an omitted
    default and the same value written out hash alike, and a release that adds a field with a
    default leaves every published version's hash as it was), with sorted keys and no
    whitespace; order of files, pipelines and pools does not matter. Policies count only when
    there are some, so specs without policies keep the version they had before policies existed.
    """
    canonical: dict[str, object] = {
        "pipelines": [_canonical(p) for p in sorted(pipelines, key=_name)],
        "pools": [_canonical(p) for p in sorted(pools, key=_name)],
    }
    if policies:
        canonical["policies"] = [_policy(p) for p in sorted(policies, key=_name)]
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _canonical(model: Pipeline | Pool) -> object:
    return model.model_dump(mode="json", exclude_defaults=True)


def _policy(policy: Policy) -> object:
    # the kind is a default too, yet tells an emit policy from a contract of the same fields
    return {
        "kind": policy.kind,
        **policy.model_dump(mode="json", exclude_defaults=True, by_alias=True),
    }


def _name(
    model: Pipeline | Pool | EmitPolicy | ContractPolicy | GuardPolicy | QuotaPolicy,
) -> str:
    return model.name


@dataclass(frozen=True, slots=True)
class CatalogSet:
    """Every spec version a coordinator has loaded, by :attr:`Catalog.version`.

    ``default`` is the version of a partition whose state names no active version yet (no
    ``streamcoord.specs.activate`` decided there); ``versions`` holds every loaded version,
    ``default`` included.
    """

    default: Catalog
    versions: Mapping[str, Catalog]

    def __post_init__(self) -> None:
        if self.versions.get(self.default.version) is not self.default:
            raise SpecError(
                f"the default spec version {self.default.version} is not among the loaded"
                f" versions ({', '.join(sorted(self.versions)) or 'none'})",
                hint="build the set with CatalogSet.of(default, *others)",
            )

    @classmethod
    def of(cls, default: Catalog, *others: Catalog) -> CatalogSet:
        """The set of ``default`` and ``others`` (a later catalog of the same version wins)."""
        versions = {c.version: c for c in others}
        versions[default.version] = default
        return cls(default, versions)

    def get(self, version: str | None) -> Catalog | None:
        """The catalog of ``version``, or None when it is not loaded (or ``version`` is None)."""
        return None if version is None else self.versions.get(version)

    def current(self, version: str | None) -> Catalog:
        """The catalog a partition whose active version is ``version`` uses."""
        return self.get(version) or self.default
