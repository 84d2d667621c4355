"""Who may call an admin endpoint: one Cerbos decision per request, taken before anything else.

Handlers take `principal: Annotated[Principal, Depends(allowed(Kind.USER, "create"))]`
(each module names its aliases). Being a dependency, the decision comes before
request-body validation: a read-only operator or a plain user learns nothing about
a mutating endpoint beyond its 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from app.api.deps import AuthzDep, PrincipalDep
from app.authz import Kind, Principal


def allowed(kind: Kind, action: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency answering the caller when Cerbos allows `action` on `kind`, else 403."""

    async def require(principal: PrincipalDep, authorizer: AuthzDep) -> Principal:
        await authorizer.require_admin(principal, kind, action)
        return principal

    return require
