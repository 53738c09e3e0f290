"""Building event models on the hot path without re-validating values the core made itself.

``model_construct`` costs tens of microseconds per call; the core emits several models per
event, all from already-typed values, so it fills defaults from a table computed once per class.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["build"]

# The slots' own descriptors and object.__new__: what pydantic's model_construct does, minus
# the per-call lookups by attribute name (half the cost of building a small model).
_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
M = TypeVar("M", bound=BaseModel)
_PLANS: dict[type[BaseModel], tuple[dict[str, Any], bool]] = {}


def _plan(cls: type[BaseModel]) -> tuple[dict[str, Any], bool]:
    defaults = {
        name: field.get_default(call_default_factory=False)
        for name, field in cls.model_fields.items()
        if not field.is_required() and field.default_factory is None
    }
    plan = _PLANS[cls] = (defaults, cls.model_config.get("extra") == "allow")
    return plan


def build(cls: type[M], extra: dict[str, Any] | None = None, /, **values: Any) -> M:
    """An instance of ``cls`` from trusted ``values`` (every field without a plain default)."""
    defaults, allows_extra = _PLANS.get(cls) or _plan(cls)
    obj = _new(cls)
    _set_dict(obj, {**defaults, **values})
    _set_fields(obj, set(values))
    _set_extra(obj, (dict(extra) if extra else {}) if allows_extra else None)
    _set_private(obj, None)
    return obj
