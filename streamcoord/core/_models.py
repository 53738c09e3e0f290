"""Building event models on the hot path without re-validating values the core made itself.

``model_construct`` costs tens of microseconds per call; the core emits several models per
event, all from already-typed values, so it fills defaults from a table computed once per class.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["build"]

_set = object.__setattr__
M = TypeVar("M", bound=BaseModel)
_PLANS: dict[type[BaseModel], tuple[dict[str, Any], bool]] = {}


def _plan(cls: type[BaseModel]) -> tuple[dict[str, Any], bool]:
    plan = _PLANS.get(cls)
    if plan is None:
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
    obj = cls.__new__(cls)
    _set(obj, "__dict__", {**defaults, **values})
    _set(obj, "__pydantic_fields_set__", set(values))
    _set(obj, "__pydantic_extra__", dict(extra or {}) if allows_extra else None)
    _set(obj, "__pydantic_private__", None)
    return obj
