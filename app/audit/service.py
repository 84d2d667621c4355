"""The audit log: one row per mutating call of either API, and per system action."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.tables import AuditEntry
from app.core.logging import request_id_var


def mark_resource(request: Request, resource_type: str, resource_id: str, **details: Any) -> None:
    """Name the object a handler acted on, for its audit row."""
    request.state.audit_resource = (resource_type, resource_id, details or None)


def skip_audit(request: Request) -> None:
    """A POST that changes nothing (a chat completion: a read with a body) gets no audit row."""
    request.state.audit_skip = True


async def record_request(
    sessionmaker: async_sessionmaker[AsyncSession], request: Request, status_code: int, api_name: str
) -> None:
    if getattr(request.state, "audit_skip", False):
        return
    principal = getattr(request.state, "principal", None)
    resource_type, resource_id, details = getattr(request.state, "audit_resource", (None, None, None))
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    async with sessionmaker() as session:
        session.add(
            AuditEntry(
                actor_id=getattr(principal, "id", None),
                organization_id=getattr(principal, "organization_id", None),
                api=api_name,
                action=f"{request.method} {path}"[:64],
                resource_type=resource_type,
                resource_id=resource_id,
                status_code=status_code,
                request_id=request_id_var.get(),
                details=details,
            )
        )
        await session.commit()


def record_system(session: AsyncSession, action: str, resource_type: str, resource_id: str, **details: Any) -> None:
    session.add(
        AuditEntry(
            actor_id=None,
            api="system",
            action=action[:64],
            resource_type=resource_type,
            resource_id=resource_id,
            status_code=200,
            details=details or None,
        )
    )
