"""`/admin/v1/quotas` and each organization's and user's `/quota`, with current usage.

The user API enforces these limits (app/users/quotas.py: 429 naming the quota).
The per-subject routes are built for both subjects by one function; annotations are
evaluated at definition (no `from __future__ import annotations`) so the handlers can
use the subject's path alias.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from app.admin.access import allow
from app.admin.errors import ERRORS
from app.admin.quotas import service
from app.admin.quotas.schemas import QuotaObject, QuotaSet, Subject
from app.api.deps import SessionDep
from app.audit.service import mark_resource
from app.authz import Kind
from app.core.pagination import page

router = APIRouter(prefix="/admin/v1", tags=["admin: quotas"], responses=ERRORS)

# Each path names its id as the subject's other routes do (`user_id`, `organization_id`).
SUBJECT_IDS: dict[Subject, str] = {"organization": "organization_id", "user": "user_id"}


@router.get("/quotas", dependencies=[allow(Kind.QUOTA, "list")])
async def list_quotas(session: SessionDep, subject: Subject | None = None, after: int | None = None,
                      limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:  # fmt: skip
    """Every quota set, with each subject's usage."""
    rows, has_more = await service.list_quotas(session, subject, after, limit)
    return page([row.model_dump() for row in rows], has_more)


def _routes(subject: Subject) -> None:
    id_name = SUBJECT_IDS[subject]
    path = f"/{subject}s/{{{id_name}}}/quota"
    SubjectId = Annotated[str, Path(alias=id_name)]

    async def read_quota(session: SessionDep, subject_id: SubjectId) -> QuotaObject:
        return await service.read(session, subject, subject_id)

    async def put_quota(request: Request, body: QuotaSet, session: SessionDep, subject_id: SubjectId) -> QuotaObject:
        quota = await service.put(session, subject, subject_id, body)
        mark_resource(request, "quota", f"{subject}:{subject_id}", **body.model_dump())
        return quota

    async def delete_quota(request: Request, session: SessionDep, subject_id: SubjectId) -> QuotaObject:
        quota = await service.remove(session, subject, subject_id)
        mark_resource(request, "quota", f"{subject}:{subject_id}")
        return quota

    routes = (
        (read_quota, "GET", "read", f"The {subject}'s limits and current usage"),
        (put_quota, "PUT", "update", f"Replace the {subject}'s limits (a field left out is unlimited)"),
        (delete_quota, "DELETE", "delete", f"Remove the {subject}'s limits"),
    )
    for handler, method, action, summary in routes:
        router.add_api_route(path, handler, methods=[method], response_model=QuotaObject, summary=summary,
                             dependencies=[allow(Kind.QUOTA, action)])  # fmt: skip


for _subject in SUBJECT_IDS:
    _routes(_subject)
