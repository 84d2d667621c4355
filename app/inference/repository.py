"""Serving's own statements: token usage and rate limits (model rows come from their domains)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import utcnow
from app.inference.tables import InferenceRateLimit, InferenceUsage


async def add_usage(
    session: AsyncSession, organization_id: str, model: str, requests: int, prompt_tokens: int, completion_tokens: int
) -> None:
    """Add answered requests to the day's counters (one upsert: concurrent writers never lose a count)."""
    row = {
        "organization_id": organization_id,
        "model": model,
        "day": utcnow().date(),
        "requests": requests,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "updated_at": utcnow(),
    }
    statement = insert(InferenceUsage).values(row)
    table = InferenceUsage.__table__.c
    statement = statement.on_conflict_do_update(
        index_elements=["organization_id", "model", "day"],
        set_={
            "requests": table.requests + requests,
            "prompt_tokens": table.prompt_tokens + prompt_tokens,
            "completion_tokens": table.completion_tokens + completion_tokens,
            "updated_at": row["updated_at"],
        },
    )
    await session.execute(statement)


async def usage(
    session: AsyncSession,
    organization_id: str | None,
    model: str | None,
    since: date | None,
    until: date | None,
    limit: int,
) -> Sequence[InferenceUsage]:
    query = select(InferenceUsage)
    if organization_id is not None:
        query = query.where(InferenceUsage.organization_id == organization_id)
    if model is not None:
        query = query.where(InferenceUsage.model == model)
    if since is not None:
        query = query.where(InferenceUsage.day >= since)
    if until is not None:
        query = query.where(InferenceUsage.day <= until)
    order = (InferenceUsage.day.desc(), InferenceUsage.organization_id, InferenceUsage.model)
    return (await session.scalars(query.order_by(*order).limit(limit))).all()


async def rate_limit(session: AsyncSession, organization_id: str) -> int | None:
    row = await session.get(InferenceRateLimit, organization_id)
    return row.requests_per_minute if row else None


async def set_rate_limit(session: AsyncSession, organization_id: str, requests_per_minute: int | None) -> None:
    row = await session.get(InferenceRateLimit, organization_id)
    if requests_per_minute is None:
        if row is not None:
            await session.delete(row)
    elif row is None:
        session.add(InferenceRateLimit(organization_id=organization_id, requests_per_minute=requests_per_minute))
    else:
        row.requests_per_minute, row.updated_at = requests_per_minute, utcnow()
    await session.flush()
