"""The HTTP API of ``streamcoord serve``: pipelines, runs, actions and live changes.

:func:`create_app` builds the FastAPI application from :class:`ApiServices` (the read model's
store, the specs, the command path and the accepted tokens).
"""

from streamcoord.api._app import create_app
from streamcoord.api._feed import ChangeFeed
from streamcoord.api._problems import PROBLEM_MEDIA_TYPE, PROBLEMS, ApiProblem, Problem
from streamcoord.api._services import (
    DEFAULT_MAX_BODY_BYTES,
    SOURCE,
    ApiServices,
    CommandSender,
    Explainer,
)
from streamcoord.api._specs import FollowedSpecs, LocalSpecs, SpecView, SpecViews

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "PROBLEMS",
    "PROBLEM_MEDIA_TYPE",
    "SOURCE",
    "ApiProblem",
    "ApiServices",
    "ChangeFeed",
    "CommandSender",
    "Explainer",
    "FollowedSpecs",
    "LocalSpecs",
    "Problem",
    "SpecView",
    "SpecViews",
    "create_app",
]
