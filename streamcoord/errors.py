"""Every error streamcoord raises, under one root.

::

    StreamcoordError                 (retryable: bool, hint: str)
    ├── ConfigError                  settings, spec files or CLI input a user must fix
    ├── SpecError                    a pipeline spec that does not validate (every problem)
    ├── EventError                   an event that cannot be decoded or accepted (dead-lettered)
    └── EnvironmentProblem           something on the machine is missing or busy (java, mvn, a port)
        └── BrokerStartError         the local Kafka broker did not come up

Messages say what went wrong and what to do about it; ``hint`` carries the second half where
it is worth printing on its own line.
"""

from __future__ import annotations

__all__ = [
    "BrokerStartError",
    "ConfigError",
    "EnvironmentProblem",
    "EventError",
    "SpecError",
    "StreamcoordError",
]


class StreamcoordError(Exception):
    """Root of every streamcoord error."""

    retryable: bool = False

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(StreamcoordError):
    """Settings or command-line input that a user must correct."""


class SpecError(StreamcoordError):
    """A pipeline spec that does not validate."""


class EventError(StreamcoordError):
    """An event that cannot be decoded or accepted."""


class EnvironmentProblem(StreamcoordError):  # noqa: N818 - a missing tool is a problem to fix, not a code error
    """Something on this machine is missing or busy."""


class BrokerStartError(EnvironmentProblem):
    """The local Kafka broker did not come up."""

    retryable = True
