from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from app.admin.timestamps import unix
from app.audit.tables import AuditEntry


class AuditObject(BaseModel):
    object: Literal["audit_entry"] = "audit_entry"
    id: int
    created_at: int
    actor_id: str | None
    organization_id: str | None
    api: str
    action: str
    resource_type: str | None
    resource_id: str | None
    status_code: int
    request_id: str | None
    details: dict[str, Any] | None

    @classmethod
    def of(cls, row: AuditEntry) -> AuditObject:
        return cls(
            id=row.id, created_at=unix(row.created_at) or 0, actor_id=row.actor_id,
            organization_id=row.organization_id, api=row.api, action=row.action, resource_type=row.resource_type,
            resource_id=row.resource_id, status_code=row.status_code, request_id=row.request_id, details=row.details,
        )  # fmt: skip
