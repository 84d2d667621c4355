"""Who may call an admin endpoint: one Cerbos decision per request, taken before anything else.

Each route declares it: `@router.get(..., dependencies=[allow(Kind.USER, "list")])`; a handler
that needs the caller takes `PrincipalDep` (FastAPI resolves it once per request). Route
dependencies run before the parameters and the body are validated, so a read-only operator or
a plain user learns nothing about a mutating endpoint beyond its 403.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends

from app.api.deps import AuthzDep, PrincipalDep
from app.authz import Kind, Principal


def allow(kind: Kind, action: str) -> Any:
    """A route dependency answering 403 unless Cerbos allows `action` on `kind` for the caller."""

    async def require(principal: PrincipalDep, authorizer: AuthzDep) -> Principal:
        await authorizer.require_admin(principal, kind, action)
        return principal

    return Depends(require)
