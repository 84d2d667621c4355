"""`/admin/v1/quotas` and each organization's and user's `/quota`, with current usage.

The user API enforces these limits (app/users/quotas.py: 429 naming the quota).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from app.admin.access import allowed
from app.admin.errors import ERRORS
from app.admin.quotas import service
from app.admin.quotas.schemas import QuotaObject, QuotaSet, Subject
from app.api.deps import SessionDep
from app.audit.service import mark_resource
from app.authz import Kind, Principal
from app.core.database import commit
from app.core.pagination import page

router = APIRouter(prefix="/admin/v1", tags=["admin: quotas"], responses=ERRORS)

ListQuotas = Annotated[Principal, Depends(allowed(Kind.QUOTA, "list"))]
ReadQuota = Annotated[Principal, Depends(allowed(Kind.QUOTA, "read"))]
UpdateQuota = Annotated[Principal, Depends(allowed(Kind.QUOTA, "update"))]
DeleteQuota = Annotated[Principal, Depends(allowed(Kind.QUOTA, "delete"))]
SUBJECT_PATHS: dict[Subject, str] = {
    "organization": "/organizations/{subject_id}/quota",
    "user": "/users/{subject_id}/quota",
}


@router.get("/quotas")
async def list_quotas(session: SessionDep, _: ListQuotas, subject: Subject | None = None, after: int | None = None,
                      limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:  # fmt: skip
    """Every quota set, with each subject's usage."""
    rows, has_more = await service.list_quotas(session, subject, after, limit)
    return page([row.model_dump() for row in rows], has_more)


def _routes(subject: Subject) -> None:
    path = SUBJECT_PATHS[subject]

    async def read_quota(session: SessionDep, _: ReadQuota, subject_id: str) -> QuotaObject:
        return await service.read(session, subject, subject_id)

    async def put_quota(request: Request, body: QuotaSet, session: SessionDep, _: UpdateQuota,
                        subject_id: str) -> QuotaObject:  # fmt: skip
        quota = await service.put(session, subject, subject_id, body)
        mark_resource(request, "quota", f"{subject}:{subject_id}", **body.model_dump())
        await commit(session)
        return quota

    async def delete_quota(request: Request, session: SessionDep, _: DeleteQuota, subject_id: str) -> QuotaObject:
        quota = await service.remove(session, subject, subject_id)
        mark_resource(request, "quota", f"{subject}:{subject_id}")
        await commit(session)
        return quota

    router.add_api_route(path, read_quota, methods=["GET"], response_model=QuotaObject,
                         summary=f"The {subject}'s limits and current usage")  # fmt: skip
    router.add_api_route(path, put_quota, methods=["PUT"], response_model=QuotaObject,
                         summary=f"Replace the {subject}'s limits (a field left out is unlimited)")  # fmt: skip
    router.add_api_route(path, delete_quota, methods=["DELETE"], response_model=QuotaObject,
                         summary=f"Remove the {subject}'s limits")  # fmt: skip


for _subject in SUBJECT_PATHS:
    _routes(_subject)
