"""A tiny adapter over CEL so the rest of the core never touches the ``cel`` module directly."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cel

from streamcoord.errors import SpecError

__all__ = ["Compiled", "Template", "compile_expression", "compile_template"]

_SPAN = re.compile(r"\$\{\s*(.*?)\s*\}")


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled CEL program and its source (for messages)."""

    source: str
    program: Any

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """The value of the expression; raises ``ValueError`` when evaluation fails."""
        try:
            return self.program.execute(dict(variables))
        except Exception as exc:  # the cel binding raises builtin errors of several kinds
            raise ValueError(f"{self.source!r}: {exc}") from exc


def compile_expression(source: str, where: str) -> Compiled:
    """Compile once at catalog build; a bad expression is a :class:`SpecError` naming ``where``."""
    try:
        return Compiled(source, cel.compile(source))
    except Exception as exc:  # the cel binding raises builtin errors of several kinds
        raise SpecError(
            f"{where}: invalid CEL expression {source!r}: {exc}",
            hint="fix the expression; see https://cel.dev for the syntax",
        ) from exc


@dataclass(frozen=True, slots=True)
class Template:
    """A param value: a whole ``${ expr }`` keeps the value's type, mixed text renders a string."""

    parts: tuple[str | Compiled, ...]
    whole: bool

    def render(self, variables: Mapping[str, Any]) -> Any:
        if self.whole:
            part = self.parts[0]
            assert isinstance(part, Compiled)  # whole templates hold exactly one expression
            return part.evaluate(variables)
        return "".join(
            p if isinstance(p, str) else _text(p.evaluate(variables)) for p in self.parts
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def compile_template(text: str, where: str) -> Template | None:
    """None when ``text`` holds no ``${ }`` span (render it as is)."""
    spans = list(_SPAN.finditer(text))
    if not spans:
        return None
    if len(spans) == 1 and spans[0].span() == (0, len(text)):
        return Template((compile_expression(spans[0].group(1), where),), whole=True)
    parts: list[str | Compiled] = []
    pos = 0
    for span in spans:
        parts.append(text[pos : span.start()])
        parts.append(compile_expression(span.group(1), where))
        pos = span.end()
    parts.append(text[pos:])
    return Template(tuple(p for p in parts if p != ""), whole=False)
