"""The bearer-token check as a FastAPI dependency: ``Depends(require(Role.operator))``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from streamcoord.api._problems import ApiProblem
from streamcoord.api._services import ApiServices
from streamcoord.auth import Principal, Refusal, Role, audit_refusal

__all__ = ["bearer", "require", "services_of"]

bearer = HTTPBearer(
    auto_error=False,
    description="A token from the settings (`streamcoord token create`), or the admin token "
    "`streamcoord serve` printed at start.",
)


def services_of(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that answers 401/403 (audited) unless the caller's token has ``role``."""

    async def check(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        result = services_of(request).tokens.check(request.headers.get("authorization"), role)
        if isinstance(result, Refusal):
            client = request.client.host if request.client else None
            audit_refusal(result, request.method, request.url.path, client)
            headers = {"WWW-Authenticate": 'Bearer realm="streamcoord"'}
            raise ApiProblem(result.code, result.message,
                             headers=headers if result.status == 401 else None)  # fmt: skip
        return result

    return check
