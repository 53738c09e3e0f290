"""A problem found in a spec, located in its file: what ``streamcoord validate`` prints."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["FieldPath", "Problem", "Severity", "format_path", "sorted_problems"]

#: An error makes ``streamcoord validate`` fail; a warning is printed and the specs still load.
Severity = Literal["error", "warning"]

#: Where a value sits inside a YAML document: mapping keys and list indexes, outermost first.
FieldPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One problem; ``line`` and ``col`` are 1-based (0 when the whole file is meant)."""

    file: str
    line: int
    col: int
    path: str
    message: str
    hint: str = ""
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        if self.severity == "warning":
            where += ": warning"
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


def format_path(path: FieldPath) -> str:
    """``("pipelines", 0, "stages", 2, "pool")`` as ``pipelines[0].stages[2].pool``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def sorted_problems(problems: Iterable[Problem]) -> tuple[Problem, ...]:
    """Problems in file and line order, each once, so output does not depend on check order."""
    return tuple(sorted(set(problems)))
