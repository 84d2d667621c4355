"""Files: streamed upload with validation of every line, listing, retrieval, deletion."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.authz import Authorizer, Kind, Principal, resource_attributes
from app.core import ids
from app.core.celery_app import TASK_INDEX_FILE, TASK_SEARCH_FILE, celery_app, queue_for
from app.core.config import Settings
from app.core.database import utcnow
from app.core.errors import BadRequest, Conflict, PayloadTooLarge, ServiceUnavailable
from app.core.outbox import enqueue
from app.files import repository
from app.files.tables import File
from app.files.upload import receive_upload
from app.files.validation import StreamingValidator, ValidationLimits, ValidationReport
from app.users.quotas import check_storage

SUPPORTED_PURPOSES = ("fine-tune",)
MAX_FILENAME_CHARS = 255


def storage_path(settings: Settings, row: File) -> Path:
    return settings.datasets_path / row.storage_name


def _clean_filename(raw: str | None) -> str:
    """The client's name is only a label, and a name that is a path or hides characters is refused.

    Refusing (rather than quietly cutting `../../x` down to `x`) tells a client that
    sent a path that its name was not what it meant to send.
    """
    if raw is None:
        raise BadRequest("Missing the 'file' part of the multipart form.", param="file", code="missing_file")
    name = raw.strip()
    problem = None
    if not name:
        problem = "is empty"
    elif "/" in name or "\\" in name:
        problem = "is a path; send the bare file name"
    elif not name.isprintable():
        problem = "contains control characters (NUL, newline, ...)"
    elif name in (".", ".."):
        problem = "is not a file name"
    if problem:
        raise BadRequest(f"The uploaded file's name {problem}.", param="file", code="invalid_filename")
    return name[:MAX_FILENAME_CHARS]


def _rejection(report: ValidationReport) -> BadRequest:
    shown = "; ".join(f"line {error.line}: {error.message}" for error in report.errors[:5])
    more = f" (and {report.error_count - 5} more)" if report.error_count > 5 else ""
    first = report.errors[0] if report.errors else None
    return BadRequest(
        f"Invalid training file: {report.error_count} problem(s). {shown}{more}",
        param="file",
        code=first.code if first and report.error_count == 1 else "invalid_file",
        details={
            "error_count": report.error_count,
            "errors": [{"line": e.line, "code": e.code, "message": e.message, "param": e.param} for e in report.errors],
        },
    )


async def upload(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    authorizer: Authorizer,
    principal: Principal,
    body: AsyncIterator[bytes],
    content_type: str | None,
    content_length: int | None,
) -> File:
    # Refuse an announced oversize body before reading a byte of it.
    if content_length is not None and content_length > settings.max_upload_bytes + 64 * 1024:
        raise PayloadTooLarge(f"File is larger than the limit of {settings.max_upload_bytes} bytes.", param="file")
    attrs = {"owner_id": principal.id, "organization_id": principal.organization_id}
    await authorizer.require_create(principal, Kind.FILE, attrs)
    file_id = ids.file_id()

    settings.datasets_path.mkdir(parents=True, exist_ok=True)
    storage_name = f"{uuid.uuid4().hex}.jsonl"
    partial = settings.datasets_path / f".{storage_name}.partial"
    validator = StreamingValidator(
        ValidationLimits(
            max_line_bytes=settings.max_line_bytes,
            max_lines=settings.max_lines,
            max_json_depth=settings.max_json_depth,
        )
    )
    digest = hashlib.sha256()

    def consume(chunk: bytes) -> None:
        digest.update(chunk)
        validator.feed(chunk)

    form = await receive_upload(body, content_type, partial, settings.max_upload_bytes, consume)
    try:
        purpose = form.fields.get("purpose")
        if purpose is None:
            raise BadRequest("Missing required parameter: 'purpose'.", param="purpose", code="missing_purpose")
        if purpose not in SUPPORTED_PURPOSES:
            raise BadRequest(
                f"Unsupported purpose '{purpose[:50]}'; this platform accepts: {', '.join(SUPPORTED_PURPOSES)}.",
                param="purpose",
                code="unsupported_purpose",
            )
        filename = _clean_filename(form.filename)
        report = validator.finish()
        if not report.ok:
            raise _rejection(report)
        await check_storage(session, principal, form.file_bytes)
        os.replace(partial, settings.datasets_path / storage_name)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    row = File(
        id=file_id,
        owner_id=principal.id,
        organization_id=principal.organization_id,
        filename=filename,
        purpose=purpose,
        bytes=form.file_bytes,
        sha256=digest.hexdigest(),
        storage_name=storage_name,
        status="processed",
        data_format=report.data_format,
        statistics=report.statistics,
        index_status="pending",
    )
    session.add(row)
    enqueue(session, sessionmaker, TASK_INDEX_FILE, [file_id])
    await session.flush()
    return row


async def get(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, file_id: str, action: str = "read"
) -> File:
    row = await repository.get_live(session, file_id)
    await authorizer.require(principal, Kind.FILE, file_id, resource_attributes(row) if row else None, action)
    assert row is not None
    return row


async def read(session: AsyncSession, authorizer: Authorizer, principal: Principal, file_id: str) -> Any:
    """`get` for a response only: the read-only row (`repository.FILE_ROWS.row`), one statement, no transaction."""
    row = await repository.read_live(session, file_id)
    await authorizer.require(principal, Kind.FILE, file_id, resource_attributes(row) if row else None, "read")
    return row


async def list_visible(
    session: AsyncSession,
    authorizer: Authorizer,
    principal: Principal,
    purpose: str | None,
    after: str | None,
    limit: int,
    order: str,
) -> tuple[list[Any], bool]:
    visible = await authorizer.list_filter(principal, Kind.FILE, "read", File)
    return await repository.list_page(session, visible, purpose, after, limit, descending=order == "desc")


async def delete(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    authorizer: Authorizer,
    principal: Principal,
    file_id: str,
) -> File:
    row = await get(session, authorizer, principal, file_id, "delete")
    row.deleted_at = utcnow()
    row.status = "deleted"
    storage_path(settings, row).unlink(missing_ok=True)
    # Vectors go with the file; the same task removes them once it sees the row deleted.
    enqueue(session, sessionmaker, TASK_INDEX_FILE, [file_id])
    await session.flush()
    return row


async def reindex(
    session: AsyncSession, everything: bool = False, since: datetime | None = None
) -> tuple[list[File], list[int]]:
    """Queue the vector indexing of stored files again (repository.to_reindex says which): the files, and
    the outbox messages to relay once committed. A live file shows `pending` until its worker has indexed it."""
    rows = list(await repository.to_reindex(session, everything, since))
    messages = [enqueue(session, None, TASK_INDEX_FILE, [row.id]) for row in rows]
    for row in rows:
        if row.deleted_at is None:
            row.index_status = "pending"
    await session.flush()
    return rows, [message.id for message in messages]


SEARCH_TIMEOUT_SECONDS = 60


def _search_on_worker(row: File, query: str, limit: int) -> list[dict[str, object]]:
    result = celery_app.send_task(
        TASK_SEARCH_FILE, args=[row.id, row.owner_id, row.organization_id, query, limit],
        queue=queue_for(TASK_SEARCH_FILE),
    )  # fmt: skip
    try:
        return list(result.get(timeout=SEARCH_TIMEOUT_SECONDS))
    finally:
        result.forget()


async def search(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, file_id: str, query: str, limit: int
) -> tuple[File, list[dict[str, object]]]:
    """Nearest examples of one file; the payload filter names the file's own owner and organization."""
    row = await get(session, authorizer, principal, file_id)
    if row.index_status != "indexed":
        pending = row.index_status in ("pending", "indexing")
        raise Conflict(f"File '{file_id}' is not indexed yet (index status '{row.index_status}'); retry shortly.",
                       param="file_id", code="file_not_indexed",
                       headers={"x-should-retry": "true", "Retry-After": "2"} if pending else None)  # fmt: skip
    try:
        hits = await anyio.to_thread.run_sync(_search_on_worker, row, query, limit)
    except TimeoutError:
        raise ServiceUnavailable("No CPU worker answered the search in time; retry shortly.") from None
    return row, hits
