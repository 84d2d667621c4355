"""Every authorization decision of the platform, asked of Cerbos; none is ever cached here.

Single objects: `CheckResources`, several objects (of one kind or of several) in one call.
Lists: `PlanResources` turned into a SQL condition (`list_filter`), so a list query never
fetches another tenant's rows. Cerbos denies by default, and any failure to get an answer
raises `AuthorizationUnavailable` (503): nothing is allowed on a transport error.
A principal without roles (a disabled user) is denied without asking, because Cerbos
rejects such a request instead of denying it. Since no answer is kept, a permission taken
out of a policy is refused on the next call Cerbos answers with the new policy. What is kept
is the SQL a plan was translated to (`TranslatedPlans`), found again only by an identical answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, false

from app.authz.errors import AuthorizationUnavailable, Forbidden, hidden, refused, refused_create
from app.authz.filters import TableLike, TranslatedPlans
from app.authz.kinds import Kind, resource_attributes
from app.authz.principal import Principal
from app.authz.transport import GrpcTransport, HttpTransport, ResourceCheck, Transport
from app.core.logging import request_id_var

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
    """Built once per process (lifespan, worker init); `close()` at shutdown.

    With `grpc_address` ("host:3593") decisions go over gRPC, else over HTTP to `cerbos_url`.
    """

    def __init__(self, cerbos_url: str, *, grpc_address: str | None = None, timeout_seconds: float = 2.0) -> None:
        self._transport: Transport = (
            GrpcTransport(grpc_address, timeout_seconds) if grpc_address else HttpTransport(cerbos_url, timeout_seconds)
        )
        self.transport_name = "grpc" if grpc_address else "http"
        self.translated = TranslatedPlans()

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
        wanted = tuple(actions)
        checks = [ResourceCheck(str(kind), resource_id, attrs, wanted) for resource_id, attrs in resources.items()]
        return dict(zip(resources, await self.check_all(principal, checks), strict=True))

    async def check_all(self, principal: Principal, checks: Sequence[ResourceCheck]) -> list[frozenset[str]]:
        """The allowed actions of each check, in order: resources of any kinds, in as few calls as Cerbos allows.

        A handler that decides on several objects (a job and the files it trains on) asks once.
        """
        if not principal.roles:
            return [frozenset() for _ in checks]
        unique = list(_merged(checks).values())
        batches = [
            unique[start : start + MAX_RESOURCES_PER_REQUEST]
            for start in range(0, len(unique), MAX_RESOURCES_PER_REQUEST)
        ]
        request_id = request_id_var.get()  # Cerbos' own logs then name the platform's request
        answers = await asyncio.gather(*(self._transport.check(principal, batch, request_id) for batch in batches))
        allowed = {
            (check.kind, check.resource_id): actions
            for batch, answer in zip(batches, answers, strict=True)
            for check, actions in zip(batch, answer, strict=True)
        }
        return [allowed[check.kind, check.resource_id] & frozenset(check.actions) for check in checks]

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
        plan = await self._transport.plan(principal, str(kind), action, request_id_var.get())
        return self.translated.condition(plan, table, columns)

    async def connect(self) -> None:
        """Connect to Cerbos at start-up; a Cerbos not up yet is reported by /ready, not fatal here."""
        try:
            await self._transport.connect()
        except AuthorizationUnavailable:
            return  # logged by the transport; the first decision connects again

    async def close(self) -> None:
        await self._transport.close()


def _merged(checks: Sequence[ResourceCheck]) -> dict[tuple[str, str], ResourceCheck]:
    """One entry per object: the same object asked twice (a training file that is also the validation
    file) is sent once, with the actions of both."""
    merged: dict[tuple[str, str], ResourceCheck] = {}
    for check in checks:
        key = (check.kind, check.resource_id)
        earlier = merged.get(key)
        actions = check.actions if earlier is None else tuple(dict.fromkeys((*earlier.actions, *check.actions)))
        merged[key] = replace(check, actions=actions)
    return merged
