"""`/v1/files`: OpenAI's files API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from app.api.deps import AuthzDep, PrincipalDep, ResourcesDep, SessionDep, SettingsDep
from app.audit.service import mark_resource
from app.core.errors import PlatformError
from app.files import service
from app.files.schemas import FileDeleted, FileList, FileObject

router = APIRouter(prefix="/v1/files", tags=["files"])

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": "OpenAI error object"} for code in (400, 401, 404, 413, 429)
}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "purpose"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "purpose": {"type": "string", "enum": ["fine-tune"]},
                    },
                }
            }
        },
    }
}


@router.post("", response_model=FileObject, responses=ERRORS, openapi_extra=UPLOAD_BODY)
async def create_file(
    request: Request, session: SessionDep, resources: ResourcesDep, authorizer: AuthzDep, principal: PrincipalDep
) -> FileObject:
    """Upload a JSONL dataset; every bad line is reported and nothing is stored if any is found."""
    length = request.headers.get("content-length")
    row = await service.upload(
        session,
        resources.sessionmaker,
        resources.settings,
        authorizer,
        principal,
        request.stream(),
        request.headers.get("content-type"),
        int(length) if length and length.isdigit() else None,
    )
    mark_resource(request, "file", row.id)
    return FileObject.of(row)


@router.get("", response_model=FileList, responses=ERRORS)
async def list_files(
    session: SessionDep,
    authorizer: AuthzDep,
    principal: PrincipalDep,
    purpose: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 10000,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> FileList:
    """Files the caller may see, newest first."""
    rows, has_more = await service.list_visible(session, authorizer, principal, purpose, after, limit, order)
    return FileList.of([FileObject.of(row) for row in rows], has_more)


@router.get("/{file_id}", response_model=FileObject, responses=ERRORS)
async def retrieve_file(session: SessionDep, authorizer: AuthzDep, principal: PrincipalDep, file_id: str) -> FileObject:
    """One file object."""
    return FileObject.of(await service.read(session, authorizer, principal, file_id))


@router.delete("/{file_id}", response_model=FileDeleted, responses=ERRORS)
async def delete_file(
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    authorizer: AuthzDep,
    principal: PrincipalDep,
    file_id: str,
) -> FileDeleted:
    """Delete a file, its stored content and its vectors."""
    row = await service.delete(session, resources.sessionmaker, resources.settings, authorizer, principal, file_id)
    mark_resource(request, "file", row.id)
    return FileDeleted(id=row.id)


@router.get(
    "/{file_id}/content",
    responses={200: {"content": {"application/octet-stream": {}}}, **ERRORS},
    response_class=FileResponse,
)
async def file_content(
    session: SessionDep, settings: SettingsDep, authorizer: AuthzDep, principal: PrincipalDep, file_id: str
) -> FileResponse:
    """The file's bytes, streamed from storage."""
    row = await service.get(session, authorizer, principal, file_id, "download")
    path = service.storage_path(settings, row)
    if not path.exists():
        raise PlatformError(f"The content of file '{file_id}' is missing from storage.", code="content_missing")
    return FileResponse(path, media_type="application/octet-stream", filename=row.filename)


@router.get("/{file_id}/search", responses={409: {"description": "not indexed yet"}, **ERRORS})
async def search_file(
    session: SessionDep,
    authorizer: AuthzDep,
    principal: PrincipalDep,
    file_id: str,
    q: Annotated[str, Query(min_length=1, max_length=2000)],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, object]:
    """Examples of this file nearest in meaning to `q` (line number, excerpt, score)."""
    row, hits = await service.search(session, authorizer, principal, file_id, q, limit)
    return {"object": "list", "file_id": row.id, "query": q, "data": hits}


@router.get("/{file_id}/duplicates", responses=ERRORS)
async def file_duplicates(
    session: SessionDep, authorizer: AuthzDep, principal: PrincipalDep, file_id: str
) -> dict[str, object]:
    """Exact and near-duplicate groups of line numbers found when the file was indexed."""
    row = await service.get(session, authorizer, principal, file_id)
    return {"object": "file.duplicates", "file_id": row.id, "index_status": row.index_status,
            "report": row.duplicate_report}  # fmt: skip
