"""What every spec model shares: the frozen, strict base model and the common field types."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Expression", "Name", "SpecModel"]

Name = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_-]{0,62}$",
        description="Lower-case letters, digits, '_' and '-'; starts with a letter.",
    ),
]
Expression = Annotated[str, Field(min_length=1, description="A CEL expression.")]


class SpecModel(BaseModel):
    # Unknown fields are errors (with a did-you-mean hint from the validator), and parsed specs
    # are values: nothing downstream may mutate them.
    model_config = ConfigDict(extra="forbid", frozen=True)
