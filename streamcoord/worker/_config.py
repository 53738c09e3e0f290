"""Reading a trigger's ``executor.config`` with the executor's config model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, JsonValue, ValidationError

from streamcoord.worker._errors import NonRetryableError

__all__ = ["parse_config"]

M = TypeVar("M", bound=BaseModel)


def parse_config(config: Mapping[str, JsonValue], model: type[M]) -> M:
    """``config`` as ``model``; an invalid one fails the attempt for good, naming the fields."""
    try:
        return model.model_validate(config)
    except ValidationError as error:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in detail['loc']) or 'config'}: {detail['msg']}"
            for detail in error.errors()
        )
        raise NonRetryableError(
            f"invalid executor.config for the {model.__name__}: {reasons}",
            hint="`streamcoord validate` checks it against the spec schema",
        ) from None
