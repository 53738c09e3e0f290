"""Spec files to validated models, with every problem located in its file.

:func:`parse_specs` is pure (text in, models and problems out). :func:`load_specs` and
:func:`read_topic_names` are the only functions of the spec package that read files: they sit
at its edge so that everything else stays free of I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from streamcoord.errors import ConfigError
from streamcoord.pipelines.models import Pipeline, Policy, Pool, SpecFile
from streamcoord.pipelines.problem import FieldPath, Problem, sorted_problems
from streamcoord.pipelines.schema_problems import schema_problems
from streamcoord.pipelines.yaml_source import YamlDocument, parse_yaml

__all__ = [
    "LoadedSpecs",
    "SpecDocument",
    "load_specs",
    "parse_specs",
    "read_topic_names",
    "spec_files",
]

SPEC_SUFFIXES = (".yaml", ".yml")
_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class SpecDocument:
    """The valid part of one YAML document, and where each of its pipelines, pools and policies
    came from.

    ``pipeline_paths[i]`` is the path of ``spec.pipelines[i]`` in ``source`` (invalid entries
    are left out of ``spec``, so indexes may differ from the file's).
    """

    source: YamlDocument
    spec: SpecFile
    pipeline_paths: tuple[FieldPath, ...]
    pool_paths: tuple[FieldPath, ...]
    policy_paths: tuple[FieldPath, ...] = ()

    @property
    def file(self) -> str:
        """The file the document was read from, as given."""
        return self.source.file


@dataclass(frozen=True, slots=True)
class LoadedSpecs:
    """Everything loaded from some files: valid models, positions and the problems found.

    ``unchecked_pipelines`` names pipelines that exist but did not validate; references to
    them are not reported again as unknown.
    """

    documents: tuple[SpecDocument, ...] = ()
    problems: tuple[Problem, ...] = ()
    unchecked_pipelines: frozenset[str] = frozenset()

    @property
    def pipelines(self) -> tuple[Pipeline, ...]:
        """Every valid pipeline, in file order."""
        return tuple(p for document in self.documents for p in document.spec.pipelines)

    @property
    def pools(self) -> tuple[Pool, ...]:
        """Every valid pool, in file order."""
        return tuple(p for document in self.documents for p in document.spec.pools)

    @property
    def policies(self) -> tuple[Policy, ...]:
        """Every valid policy, in file order."""
        return tuple(p for document in self.documents for p in document.spec.policies)

    def merged(self, other: LoadedSpecs) -> LoadedSpecs:
        """These specs followed by ``other``'s."""
        return LoadedSpecs(
            self.documents + other.documents,
            sorted_problems(self.problems + other.problems),
            self.unchecked_pipelines | other.unchecked_pipelines,
        )


def parse_specs(text: str, file: str) -> LoadedSpecs:
    """Parse and validate the YAML ``text`` of ``file`` (the name is used in problems only)."""
    yaml_documents, problems = parse_yaml(text, file)
    documents: list[SpecDocument] = []
    unchecked: set[str] = set()
    for source in yaml_documents:
        if source.data is None:
            continue  # an empty document: nothing declared, nothing wrong
        document, found, invalid = _validate_document(source)
        problems.extend(found)
        unchecked.update(invalid)
        if document is not None:
            documents.append(document)
    return LoadedSpecs(tuple(documents), sorted_problems(problems), frozenset(unchecked))


def _validate_document(source: YamlDocument) -> tuple[SpecDocument | None, list[Problem], set[str]]:
    data = source.data
    if not isinstance(data, dict):
        line, col = source.position(())
        hint = "start the file with 'pipelines:' and/or 'pools:'"
        return None, [Problem(source.file, line, col, "", "expected a mapping", hint)], set()
    # Each pipeline and pool is validated on its own, so one broken pipeline does not hide the
    # problems (or the valid cross-references) of its neighbours.
    lists = {
        key: data[key]
        for key in ("pipelines", "pools", "policies")
        if isinstance(data.get(key), list)
    }
    problems = _validate(SpecFile, {**data, **{key: [] for key in lists}}, source, ())
    pipelines = _validate_items(Pipeline, lists.get("pipelines"), source)
    pools = _validate_items(Pool, lists.get("pools"), source)
    policies = _validate_policies(lists.get("policies"), source)
    spec = SpecFile.model_construct(
        pipelines=pipelines.valid, pools=pools.valid, policies=policies.valid
    )
    document = SpecDocument(
        source, spec, tuple(pipelines.paths), tuple(pools.paths), tuple(policies.paths)
    )
    found = problems + pipelines.problems + pools.problems + policies.problems
    return document, found, pipelines.invalid_names


@dataclass(frozen=True, slots=True)
class _Items(Generic[_M]):
    valid: list[_M]
    paths: list[FieldPath]
    problems: list[Problem]
    invalid_names: set[str]


def _validate_items(model: type[_M], items: list[Any] | None, source: YamlDocument) -> _Items[_M]:
    result: _Items[_M] = _Items([], [], [], set())
    for index, item in enumerate(items or []):
        path: FieldPath = (f"{model.__name__.lower()}s", index)
        try:
            result.valid.append(model.model_validate(item))
            result.paths.append(path)
        except ValidationError as error:
            result.problems.extend(schema_problems(error, model, source, path))
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                result.invalid_names.add(item["name"])
    return result


_POLICY: TypeAdapter[Policy] = TypeAdapter(Policy)


def _validate_policies(items: list[Any] | None, source: YamlDocument) -> _Items[Policy]:
    """Each policy on its own, like pipelines (a policy is a union over its ``kind``)."""
    result: _Items[Policy] = _Items([], [], [], set())
    for index, item in enumerate(items or []):
        path: FieldPath = ("policies", index)
        try:
            result.valid.append(_POLICY.validate_python(item))
            result.paths.append(path)
        except ValidationError as error:
            # schema_problems walks the union's branches from the policy's own type
            result.problems.extend(schema_problems(error, Policy, source, path))  # type: ignore[arg-type]
    return result


def _validate(
    model: type[BaseModel], data: Any, source: YamlDocument, prefix: FieldPath
) -> list[Problem]:
    try:
        model.model_validate(data)
    except ValidationError as error:
        return schema_problems(error, model, source, prefix)
    return []


def spec_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The files ``paths`` name: files as given, directories' ``*.yaml``/``*.yml`` sorted."""
    for path in paths:
        if path.is_dir():
            files = (p for p in path.iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file())
            yield from sorted(files)
        elif path.exists():
            yield path
        else:
            raise ConfigError(f"no such file or directory: {path}", hint="check the path")


def load_specs(paths: Iterable[Path | str]) -> LoadedSpecs:
    """Load every spec file under ``paths``; unreadable files become problems, not exceptions."""
    loaded = LoadedSpecs()
    for file in spec_files(Path(p) for p in paths):
        loaded = loaded.merged(_load_file(file))
    return loaded


def _load_file(file: Path) -> LoadedSpecs:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problem = Problem(str(file), 1, 1, "", f"cannot read the file: {error}")
        return LoadedSpecs(problems=(problem,))
    return parse_specs(text, str(file))


def read_topic_names(path: Path | str) -> frozenset[str] | None:
    """Topic names declared in a ``topics.yaml``; ``None`` when the file does not exist.

    Accepts a list of topics or a mapping with a ``topics`` list; each topic a mapping with
    at least ``name`` (or a bare name).
    """
    file = Path(path)
    if not file.is_file():
        return None
    documents, problems = parse_yaml(file.read_text(encoding="utf-8"), str(file))
    if problems:
        raise ConfigError(f"cannot read topics from {file}: {problems[0]}", hint="fix the file")
    names: set[str] = set()
    for document in documents:
        names.update(_topic_names(document.data))
    return frozenset(names)


def _topic_names(data: Any) -> Iterator[str]:
    entries = data.get("topics", []) if isinstance(data, dict) else data
    for entry in entries if isinstance(entries, list) else []:
        name = entry.get("name") if isinstance(entry, dict) else entry
        if isinstance(name, str):
            yield name
