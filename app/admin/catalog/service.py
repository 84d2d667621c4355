"""The base-model catalog: register, update, allow or disallow, prepare on the CPU worker, remove."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.catalog.schemas import BaseModelCreate, BaseModelUpdate, source_type_of
from app.authz.resources import Resources
from app.catalog import repository as catalog
from app.catalog.sources import local_model_problem
from app.catalog.tables import CatalogEntry
from app.core.celery_app import TASK_DOWNLOAD_BASE_MODEL
from app.core.errors import BadRequest, Conflict, NotFound
from app.core.outbox import enqueue
from app.jobs import repository as jobs

# Fields an update may set back to null (the others keep their value when null or left out).
NULLABLE_FIELDS = ("revision", "chat_template", "parameter_count")


def _check_local(source: str) -> None:
    problem = local_model_problem(source)
    if problem is not None:
        raise BadRequest(problem, param="source", code="invalid_model_path")


async def get(session: AsyncSession, model_id: str) -> CatalogEntry:
    entry = await catalog.get(session, model_id)
    if entry is None:
        raise NotFound(f"No base model '{model_id}' in the catalog.", param="model_id", code="model_not_found")
    return entry


async def list_entries(
    session: AsyncSession, allowed: bool | None, download_status: str | None, after: str | None, limit: int
) -> tuple[Sequence[CatalogEntry], bool]:
    return await catalog.entries_page(session, allowed, download_status, after, limit)


def _request_download(resources: Resources, session: AsyncSession, entry: CatalogEntry) -> None:
    entry.download_status, entry.download_error = "queued", None
    enqueue(session, resources.sessionmaker, TASK_DOWNLOAD_BASE_MODEL, [entry.id])


async def register(resources: Resources, session: AsyncSession, body: BaseModelCreate) -> CatalogEntry:
    model_id = body.entry_id()
    if await catalog.get(session, model_id) is not None:
        raise Conflict(f"'{model_id}' is in the catalog already.", param="id", code="model_exists")
    local = source_type_of(body.source) == "local"
    if local:
        _check_local(body.source)
    entry = CatalogEntry(
        id=model_id, source=body.source, revision=body.revision, chat_template=body.chat_template,
        max_seq_length=body.max_seq_length, parameter_count=body.parameter_count, allowed=body.allowed,
        download_status="ready" if local else "not_downloaded", owned_by=body.owned_by,
    )  # fmt: skip
    session.add(entry)
    await session.flush()
    if body.download and not local:
        _request_download(resources, session, entry)
        await session.flush()
    return entry


async def update(resources: Resources, session: AsyncSession, model_id: str, body: BaseModelUpdate) -> CatalogEntry:
    entry = await get(session, model_id)
    changes = body.model_dump(exclude_unset=True)
    if "revision" in changes and source_type_of(entry.source) == "local" and changes["revision"] is not None:
        raise BadRequest("revision applies to hub models only.", param="revision")
    for name, value in changes.items():
        if value is not None or name in NULLABLE_FIELDS:
            setattr(entry, name, value)
    await session.flush()
    if "revision" in changes and source_type_of(entry.source) == "hub":
        # Another revision is other weights: what is cached no longer describes this entry.
        _request_download(resources, session, entry)
        await session.flush()
    return entry


async def prepare(resources: Resources, session: AsyncSession, model_id: str) -> CatalogEntry:
    """Queue the CPU-worker task that fills the HF cache (hub) or re-checks the folder (local).

    Asking again while a download runs is allowed: a lost task must never leave an entry stuck,
    and the hub client's file locks make two downloads of one snapshot safe.
    """
    entry = await get(session, model_id)
    _request_download(resources, session, entry)
    await session.flush()
    return entry


async def remove(session: AsyncSession, model_id: str) -> CatalogEntry:
    entry = await get(session, model_id)
    used = await jobs.count_made_from(session, model_id)
    if used:
        raise Conflict(f"{used} job(s) were made from '{model_id}'; disallow it instead of deleting it.",
                       param="model_id", code="model_in_use")  # fmt: skip
    await session.delete(entry)
    await session.flush()
    return entry
