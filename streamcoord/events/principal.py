"""Who sent an event: the ``scprincipal`` CloudEvents extension the edges stamp.

Kafka does not tell a consumer who produced a record, so the edge that knows the sender stamps
it: the API and HTTP ingest their authenticated caller, the CLI ``user@host``, an emitter its
configured identity. Stamping replaces whatever the event claimed. The coordinator's own messages
carry none and count as the coordinator's (see :mod:`streamcoord.core._audit`).
"""

from __future__ import annotations

from typing import TypeVar

from streamcoord.events.models import CloudEvent

__all__ = ["PRINCIPAL_ATTRIBUTE", "local_principal", "stamped_principal", "with_principal"]

PRINCIPAL_ATTRIBUTE = "scprincipal"
E = TypeVar("E", bound=CloudEvent)


def with_principal(event: E, principal: str | None) -> E:
    """``event`` stamped with ``principal``; None removes any principal it claimed."""
    extra = dict(event.__pydantic_extra__ or {})
    if principal:
        extra[PRINCIPAL_ATTRIBUTE] = principal
    elif PRINCIPAL_ATTRIBUTE not in extra:
        return event
    else:
        del extra[PRINCIPAL_ATTRIBUTE]
    copy = event.model_copy()
    copy.__pydantic_extra__ = extra
    return copy


def stamped_principal(event: CloudEvent) -> str | None:
    """The principal stamped on ``event``, if any."""
    value = (event.__pydantic_extra__ or {}).get(PRINCIPAL_ATTRIBUTE)
    return value if isinstance(value, str) and value else None


def local_principal() -> str:
    """``user@host`` of this process: what the CLI stamps on the commands it sends."""
    import getpass  # noqa: PLC0415  # here, not above: the pure core imports this module
    import socket  # noqa: PLC0415

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
