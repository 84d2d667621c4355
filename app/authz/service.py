"""Every authorization decision of the platform, asked of Cerbos over HTTP.

Single objects: `check_resources`. Lists: `plan_resources` turned into a SQL
condition (`list_filter`), so a list query never fetches another tenant's rows.
Cerbos denies by default, and any failure to get an answer raises
`AuthorizationUnavailable` (503): nothing is allowed on a transport error.
A principal without roles (a disabled user) is denied without asking, because
Cerbos rejects such a request instead of denying it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from cerbos.sdk.client import AsyncCerbosClient
from cerbos.sdk.model import (
    CerbosRequestException,
    CheckResourcesResponse,
    Resource,
    ResourceDesc,
    ResourceList,
)
from sqlalchemy import ColumnElement, false

from app.authz.errors import AuthorizationUnavailable, Forbidden, hidden, refused, refused_create
from app.authz.filters import TableLike, plan_to_condition
from app.authz.kinds import Kind, resource_attributes
from app.authz.principal import Principal

Row = TypeVar("Row")
Attributes = Mapping[str, Any]

# Cerbos' default server.requestLimits.maxResourcesPerRequest.
MAX_RESOURCES_PER_REQUEST = 50
# The admin-API kinds describe whole collections; their checks use this id.
COLLECTION_ID = "*"
# Kinds whose `read` is no tenant's view of one object: served_model's `read` is serving's admin
# views (engines, usage by model), so a denied `generate` stays the 404 of a missing model.
READ_IS_NOT_VISIBILITY = frozenset({Kind.SERVED_MODEL})
# A create is decided before the object has an id.
NEW_RESOURCE_ID = "new"


class Authorizer:
    """Built once per process (lifespan, worker init); `close()` at shutdown."""

    def __init__(self, cerbos_url: str, *, timeout_seconds: float = 2.0) -> None:
        self._client = AsyncCerbosClient(cerbos_url, timeout_secs=timeout_seconds)

    async def check(self, principal: Principal, kind: Kind, resource_id: str, attrs: Attributes, action: str) -> bool:
        allowed = await self.check_many(principal, kind, {resource_id: attrs}, [action])
        return action in allowed[resource_id]

    async def check_many(
        self,
        principal: Principal,
        kind: Kind,
        resources: Mapping[str, Attributes],
        actions: Collection[str],
    ) -> dict[str, frozenset[str]]:
        """Resource id -> the subset of `actions` the principal may take on it."""
        if not principal.roles:
            return {resource_id: frozenset() for resource_id in resources}
        items = list(resources.items())
        batches = [
            dict(items[start : start + MAX_RESOURCES_PER_REQUEST])
            for start in range(0, len(items), MAX_RESOURCES_PER_REQUEST)
        ]
        answers = await asyncio.gather(*(self._check_batch(principal, kind, batch, actions) for batch in batches))
        return {resource_id: allowed for answer in answers for resource_id, allowed in answer.items()}

    async def require(
        self, principal: Principal, kind: Kind, resource_id: str, attrs: Attributes | None, action: str
    ) -> None:
        """User API: 404 when the object is missing or the caller may not read it; 403 naming the action
        when the caller can see the object but not do this to it (a colleague's job is not theirs to cancel)."""
        if attrs is None:
            raise hidden(kind, resource_id)
        asked = {action} if kind in READ_IS_NOT_VISIBILITY else {action, "read"}
        allowed = (await self.check_many(principal, kind, {resource_id: attrs}, asked))[resource_id]
        if action in allowed:
            return
        raise refused(kind, resource_id, action) if "read" in allowed else hidden(kind, resource_id)

    async def require_create(self, principal: Principal, kind: Kind, attrs: Attributes) -> None:
        """A create the policies refuse is 403 naming no id: the object does not exist, and never will."""
        if not await self.check(principal, kind, NEW_RESOURCE_ID, attrs, "create"):
            raise refused_create(kind)

    async def require_row(
        self,
        principal: Principal,
        kind: Kind,
        resource_id: str,
        row: Row | None,
        action: str,
        *,
        attrs_from: object | None = None,
    ) -> Row:
        """The fetched row if it exists and `action` is allowed; else 404, or 403 if the caller may read it.

        `attrs_from` names the object whose owner decides, e.g. the job of a checkpoint.
        """
        if row is None:
            raise hidden(kind, resource_id)
        await self.require(principal, kind, resource_id, resource_attributes(attrs_from or row), action)
        return row

    async def require_admin(
        self,
        principal: Principal,
        kind: Kind,
        action: str,
        resource_id: str = COLLECTION_ID,
        attrs: Attributes | None = None,
    ) -> None:
        """Admin API: 403 when not allowed (the admin API is internal; hiding ids gains nothing)."""
        if not await self.check(principal, kind, resource_id, attrs or {}, action):
            raise Forbidden(f"Not allowed to {action} {str(kind).replace('_', ' ')}")

    async def list_filter(
        self,
        principal: Principal,
        kind: Kind,
        action: str,
        table: TableLike,
        columns: Mapping[str, ColumnElement[Any]] | None = None,
    ) -> ColumnElement[bool]:
        """A WHERE condition over `table` selecting exactly the rows `action` is allowed on.

        Columns named like the policy attributes (owner_id, organization_id, allowed, id)
        are used as they are; `columns` maps other attribute names to columns of `table`.
        """
        if not principal.roles:
            return false()
        async with _cerbos_call():
            plan = await self._client.plan_resources(action, principal.to_cerbos(), ResourceDesc(kind=str(kind)))
            plan.raise_if_failed()
        return plan_to_condition(plan, table, columns)

    async def close(self) -> None:
        await self._client.close()

    async def _check_batch(
        self, principal: Principal, kind: Kind, resources: Mapping[str, Attributes], actions: Collection[str]
    ) -> dict[str, frozenset[str]]:
        request = ResourceList()
        for resource_id, attrs in resources.items():
            request.add(Resource(id=resource_id, kind=str(kind), attr=dict(attrs)), set(actions))
        async with _cerbos_call():
            response = await self._client.check_resources(principal.to_cerbos(), request)
            response.raise_if_failed()
        return {resource_id: _allowed_actions(response, resource_id, actions) for resource_id in resources}


def _allowed_actions(response: CheckResourcesResponse, resource_id: str, actions: Collection[str]) -> frozenset[str]:
    result = response.get_resource(resource_id)
    if result is None:
        raise AuthorizationUnavailable(f"Cerbos returned no decision for resource {resource_id!r}")
    return frozenset(action for action in actions if result.is_allowed(action))


@asynccontextmanager
async def _cerbos_call() -> AsyncIterator[None]:
    """Any way of not getting a decision becomes one retryable error."""
    try:
        yield
    except CerbosRequestException as error:
        raise AuthorizationUnavailable(f"Cerbos refused the request: {error}") from error
    except (httpx.HTTPError, ValueError, KeyError) as error:
        # ValueError/KeyError: the SDK parses an error body that was not Cerbos JSON.
        raise AuthorizationUnavailable(f"Cerbos is unreachable: {error}") from error
