"""`/admin/v1/base-models`: the catalog of base models users may fine-tune.

Ids may contain `/` (hub-style `org/name`), so the id is a path parameter and the
`/download` route is declared before the plain one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from app.admin.access import allow
from app.admin.catalog import service
from app.admin.catalog.schemas import BaseModelCreate, BaseModelObject, BaseModelUpdate
from app.admin.errors import ERRORS
from app.api.deps import ResourcesDep, SessionDep
from app.audit.service import mark_resource
from app.authz import Kind
from app.core.pagination import page

router = APIRouter(prefix="/admin/v1/base-models", tags=["admin: base models"], responses=ERRORS)


@router.post("", response_model=BaseModelObject, dependencies=[allow(Kind.BASE_MODEL, "create")])
async def register_model(
    request: Request, body: BaseModelCreate, session: SessionDep, resources: ResourcesDep
) -> BaseModelObject:
    """Register a hub model (downloaded into the shared cache by the CPU worker) or a local model folder."""
    entry = await service.register(resources, session, body)
    mark_resource(request, "base_model", entry.id, source=entry.source, revision=entry.revision)
    return BaseModelObject.of(entry)


@router.get("", dependencies=[allow(Kind.BASE_MODEL, "list")])
async def list_models(
    session: SessionDep,
    allowed: bool | None = None,
    download_status: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    """Catalog entries in id order, allowed or not."""
    rows, has_more = await service.list_entries(session, allowed, download_status, after, limit)
    return page([BaseModelObject.of(row).model_dump() for row in rows], has_more)


@router.post(
    "/{model_id:path}/download", response_model=BaseModelObject, dependencies=[allow(Kind.BASE_MODEL, "download")]
)
async def download_model(request: Request, session: SessionDep, resources: ResourcesDep,
                         model_id: str) -> BaseModelObject:  # fmt: skip
    """Queue the pre-download on the CPU worker; `download_status` and `download_error` tell the outcome."""
    entry = await service.prepare(resources, session, model_id)
    mark_resource(request, "base_model", entry.id)
    return BaseModelObject.of(entry)


@router.get("/{model_id:path}", response_model=BaseModelObject, dependencies=[allow(Kind.BASE_MODEL, "read")])
async def retrieve_model(session: SessionDep, model_id: str) -> BaseModelObject:
    """One catalog entry with its download status."""
    return BaseModelObject.of(await service.get(session, model_id))


@router.patch("/{model_id:path}", response_model=BaseModelObject, dependencies=[allow(Kind.BASE_MODEL, "update")])
async def update_model(request: Request, body: BaseModelUpdate, session: SessionDep, resources: ResourcesDep,
                       model_id: str) -> BaseModelObject:  # fmt: skip
    """Allow or disallow a model, or change its template, limits or revision (a new revision is downloaded)."""
    entry = await service.update(resources, session, model_id, body)
    mark_resource(request, "base_model", entry.id, **body.model_dump(exclude_unset=True, exclude={"chat_template"}))
    return BaseModelObject.of(entry)


@router.delete("/{model_id:path}", dependencies=[allow(Kind.BASE_MODEL, "delete")])
async def delete_model(request: Request, session: SessionDep, model_id: str) -> dict[str, Any]:
    """Remove an entry no job was made from (otherwise disallow it). The HF cache is left as it is."""
    entry = await service.remove(session, model_id)
    mark_resource(request, "base_model", entry.id)
    return {"id": entry.id, "object": "base_model", "deleted": True}
