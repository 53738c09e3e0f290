"""streamcoord: an event-driven pipeline coordinator on Kafka."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from streamcoord.emit import Emitter, emit

__all__ = ["Emitter", "__version__", "emit"]


def __getattr__(name: str) -> Any:
    # ``streamcoord.emit`` and ``streamcoord.Emitter`` load the Kafka client on first use, not
    # with the package: the command line reads ``__version__`` and must start fast.
    if name in ("emit", "Emitter"):
        from streamcoord.emit import _emitter  # noqa: PLC0415  # the point: on first use

        value = getattr(_emitter, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(ModuleType):
    """``streamcoord.emit`` stays the function once the ``streamcoord.emit`` package is loaded
    (importing a subpackage binds it on its parent: here the function is bound instead)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "emit" and isinstance(value, ModuleType):
            value = value.emit
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
