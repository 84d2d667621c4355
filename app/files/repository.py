"""Every statement on uploaded files."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.reads import EntityRows
from app.files.tables import File


async def save(session: AsyncSession, row: File) -> None:
    """Insert the row, or update it when a row of its id exists (a retried transaction)."""
    await session.merge(row)


async def get(session: AsyncSession, file_id: str) -> File | None:
    """The row, deleted or not."""
    return await session.get(File, file_id)


async def get_live(session: AsyncSession, file_id: str) -> File | None:
    return await session.scalar(select(File).where(File.id == file_id, File.deleted_at.is_(None)))


# The API's read paths (a file retrieved, a page of the list): rows as named tuples through statements
# compiled once (app/core/reads.py). Whatever changes a file loads it with `get` or `get_live`.
FILE_ROWS = EntityRows(File)


def _live_file_by_id() -> Select[Any]:
    return FILE_ROWS.select().where(File.id == bindparam("file_id"), File.deleted_at.is_(None))


async def read_live(session: AsyncSession, file_id: str) -> Any | None:
    """`get_live` read-only (`FILE_ROWS.row`), or None."""
    return await FILE_ROWS.one_or_none(session, "live_by_id", _live_file_by_id, {"file_id": file_id})


async def list_page(
    session: AsyncSession,
    visible: ColumnElement[bool],
    purpose: str | None,
    after: str | None,
    limit: int,
    descending: bool,
) -> tuple[list[Any], bool]:
    """A page of the live files `visible` selects (a plan's condition, kept by `TranslatedPlans`)."""

    def build() -> Select[Any]:
        query = FILE_ROWS.select().where(visible, File.deleted_at.is_(None))
        if purpose is not None:
            query = query.where(File.purpose == bindparam("purpose", type_=File.purpose.type))
        return query

    values = {"purpose": purpose} if purpose is not None else {}
    key = ("visible", id(visible), purpose is not None)
    return await FILE_ROWS.page(session, key, build, values, after=after, limit=limit, descending=descending,
                                anchors=(visible,))  # fmt: skip


async def stored_bytes(
    session: AsyncSession, *, owner_id: str | None = None, organization_id: str | None = None
) -> int:
    query = select(func.coalesce(func.sum(File.bytes), 0)).where(File.deleted_at.is_(None))
    if owner_id is not None:
        query = query.where(File.owner_id == owner_id)
    if organization_id is not None:
        query = query.where(File.organization_id == organization_id)
    return int(await session.scalar(query) or 0)


async def by_ids(session: AsyncSession, file_ids: list[str]) -> dict[str, File]:
    """The rows of these ids (deleted ones included), by id."""
    rows = (await session.scalars(select(File).where(File.id.in_(file_ids)))).all()
    return {row.id: row for row in rows}


async def to_reindex(session: AsyncSession, everything: bool, since: datetime | None) -> Sequence[File]:
    """Fine-tune files whose vectors to build again: those not indexed (pending, failed, cut short), those
    uploaded at or after `since`, or with `everything` every one, deleted files too (their vectors go)."""
    query = select(File).where(File.purpose == "fine-tune")
    if not everything:
        unfinished = File.index_status != "indexed"
        query = query.where(File.deleted_at.is_(None), unfinished | (File.created_at >= since) if since else unfinished)
    return (await session.scalars(query.order_by(File.id))).all()
