"""Errors as problem details (RFC 9457): ``application/problem+json`` with a stable ``type``.

Each ``type`` is a relative URI, ``/api/v1/problems/<code>``, that answers with what the
problem means; scripts match on it (or on ``code``), never on the wording of ``detail``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "PROBLEMS",
    "PROBLEM_MEDIA_TYPE",
    "ApiProblem",
    "Problem",
    "ProblemType",
    "install_problem_handlers",
    "problem_response",
    "problem_responses",
]

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
_BASE: Final = "/api/v1/problems/"


@dataclass(frozen=True)
class ProblemType:
    code: str
    status: int
    title: str
    description: str

    @property
    def uri(self) -> str:
        return _BASE + self.code


PROBLEMS: Final = {
    p.code: p
    for p in (
        ProblemType("unauthorized", 401, "Authentication required",
                    "No bearer token, or one this server does not know. Send "
                    "`Authorization: Bearer <token>`."),
        ProblemType("forbidden", 403, "Role too low",
                    "The token is valid but its role may not do this: viewer reads, operator "
                    "also acts on runs, admin also pauses and resumes pipelines."),
        ProblemType("unknown-pipeline", 404, "No such pipeline",
                    "The loaded specs have no pipeline of this name."),
        ProblemType("unknown-run", 404, "No such run", "The read model holds no run of this id."),
        ProblemType("unknown-stage", 404, "No such stage",
                    "The run, in the coordinator's state, has no stage of this name (finished "
                    "runs leave the state after the retention period)."),
        ProblemType("unknown-command", 404, "No such command",
                    "This server sent no command of this id (it remembers the latest 10,000)."),
        ProblemType("unknown-backfill", 404, "No such backfill",
                    "This server hosts no backfill of this id (a restarted server forgets "
                    "them: start the same backfill again; nothing runs twice)."),
        ProblemType("invalid-backfill", 422, "Invalid backfill",
                    "The keys cannot be backfilled: a range that ends before it starts, a key "
                    "not in the grain's form, too many keys, or a pipeline without a manual "
                    "trigger."),
        ProblemType("backfills-unavailable", 503, "Backfills not hosted",
                    "This server was started without Kafka access for backfills."),
        ProblemType("unknown-problem", 404, "No such problem type",
                    "There is no problem type of this code."),
        ProblemType("not-found", 404, "Not found", "No resource at this path."),
        ProblemType("method-not-allowed", 405, "Method not allowed",
                    "The resource does not answer this method."),
        ProblemType("invalid-request", 422, "Invalid request",
                    "A parameter or the body does not validate; `errors` lists each problem."),
        ProblemType("invalid-cursor", 400, "Invalid cursor",
                    "The cursor was not handed out by this list with these filters and sort."),
        ProblemType("bad-request", 400, "Bad request", "The request could not be read."),
        ProblemType("payload-too-large", 413, "Request body too large",
                    "The body is over the server's limit (`--max-body-bytes`)."),
        ProblemType("broker-unavailable", 503, "Kafka did not acknowledge",
                    "The command was not stored on Kafka; nothing was sent. Try again."),
        ProblemType("not-ready", 503, "Not ready yet",
                    "The server is still reading what it needs; try again shortly."),
        ProblemType("internal-error", 500, "Internal error",
                    "A bug: the server logged it. Nothing was changed by this request."),
    )
}  # fmt: skip


class Problem(BaseModel):
    """RFC 9457 problem details, with ``code`` (the last segment of ``type``) for scripts."""

    type: str = Field(description="A URI reference naming the problem type; stable.")
    title: str
    status: int
    detail: str = ""
    code: str
    instance: str | None = Field(None, description="The request path.")
    errors: list[dict[str, Any]] | None = Field(
        None, description="invalid-request: one entry per invalid parameter or field."
    )


class ApiProblem(Exception):  # noqa: N818 - a problem answered, the RFC's name for it
    """Raise to answer with a problem; ``headers`` are added (``WWW-Authenticate``)."""

    def __init__(
        self, code: str, detail: str = "", *, headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(detail or code)
        self.problem = PROBLEMS[code]
        self.detail = detail
        self.headers = headers or {}
        self.errors = errors


def problem_response(
    code: str, detail: str = "", *, instance: str | None = None,
    headers: dict[str, str] | None = None, errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:  # fmt: skip
    kind = PROBLEMS[code]
    body = Problem(
        type=kind.uri, title=kind.title, status=kind.status, detail=detail or kind.description,
        code=kind.code, instance=instance, errors=errors,
    )  # fmt: skip
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True), kind.status, headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )  # fmt: skip


def problem_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problems an endpoint may answer."""
    by_status: dict[int, list[str]] = {}
    for code in ("bad-request", "unauthorized", "invalid-request", "payload-too-large", *codes):
        by_status.setdefault(PROBLEMS[code].status, []).append(code)
    return {
        status: {
            "description": "; ".join(PROBLEMS[c].title for c in found),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status, found in sorted(by_status.items())
    }


_BY_STATUS: Final = {
    400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
    405: "method-not-allowed", 413: "payload-too-large", 422: "invalid-request",
}  # fmt: skip


def install_problem_handlers(app: FastAPI) -> None:
    """Every error the app answers becomes problem+json."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return problem_response(
            exc.problem.code, exc.detail, instance=request.url.path, headers=exc.headers,
            errors=exc.errors,
        )  # fmt: skip

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _BY_STATUS.get(exc.status_code, "bad-request" if exc.status_code < 500 else
                              "internal-error")  # fmt: skip
        detail = exc.detail if isinstance(exc.detail, str) else ""
        return problem_response(code, detail, instance=request.url.path,
                                headers=dict(exc.headers or {}))  # fmt: skip

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
             "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]  # fmt: skip
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)[:2000]
        return problem_response("invalid-request", detail, instance=request.url.path,
                                errors=errors)  # fmt: skip

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        return problem_response("internal-error", instance=request.url.path)

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_crash)
