"""OpenAI-style list pages: {"object": "list", "data": [...], "has_more": bool}."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

T = TypeVar("T")


class ListPage(BaseModel):
    object: str = "list"
    data: list[Any]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None


async def fetch_page(
    session: AsyncSession,
    query: Select[Any],
    id_column: InstrumentedAttribute[str],
    *,
    after: str | None,
    limit: int,
    descending: bool = True,
) -> tuple[Sequence[Any], bool]:
    """One page after the cursor `after` (ids sort as creation time), plus whether more follow."""
    if after is not None:
        query = query.where(id_column < after if descending else id_column > after)
    query = query.order_by(id_column.desc() if descending else id_column.asc()).limit(limit + 1)
    rows = (await session.scalars(query)).all()
    return rows[:limit], len(rows) > limit


def page(data: list[Any], has_more: bool) -> dict[str, Any]:
    first = data[0] if data else None
    last = data[-1] if data else None
    return {
        "object": "list",
        "data": data,
        "has_more": has_more,
        "first_id": _id_of(first),
        "last_id": _id_of(last),
    }


def _id_of(item: Any) -> str | None:
    if item is None:
        return None
    return item.get("id") if isinstance(item, dict) else getattr(item, "id", None)


def contains_pattern(text: str) -> str:
    """An ILIKE pattern for a list filter matching `text` anywhere, its own wildcards taken literally (escape '\\')."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
