"""What operators do to the coordinator, shared by the CLI and the HTTP API.

Commands are events on the events topic (:mod:`._commands` builds them, with the caller as
principal); :class:`CommandTracker` learns whether the coordinator took or rejected each one;
:func:`explain_stage` answers ``streamcoord explain`` from the coordinator's changelog.
"""

from streamcoord.control._commands import (
    PRINCIPAL_ATTRIBUTE,
    cancel_run,
    default_run_key,
    pause_pipeline,
    principal_of,
    request_run,
    resume_pipeline,
    retry_stage,
)
from streamcoord.control._explain import explain_stage
from streamcoord.control._tracker import CommandState, CommandTracker, TrackedCommand

__all__ = [
    "PRINCIPAL_ATTRIBUTE",
    "CommandState",
    "CommandTracker",
    "TrackedCommand",
    "cancel_run",
    "default_run_key",
    "explain_stage",
    "pause_pipeline",
    "principal_of",
    "request_run",
    "resume_pipeline",
    "retry_stage",
]
