"""Every statement on fine-tuned models (the rows a succeeded job leaves)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import fetch_page
from app.finetuned.tables import FineTunedModel


def add(session: AsyncSession, row: FineTunedModel) -> None:
    session.add(row)


async def get(session: AsyncSession, model_id: str) -> FineTunedModel | None:
    return await session.get(FineTunedModel, model_id)


async def of_job(session: AsyncSession, job_id: str) -> FineTunedModel | None:
    return await session.scalar(select(FineTunedModel).where(FineTunedModel.job_id == job_id))


async def by_registry_version(session: AsyncSession, name: str, version: int) -> FineTunedModel | None:
    """The fine-tuned model whose weights are version `version` of registered model `name`."""
    named = (FineTunedModel.registry_name == name, FineTunedModel.registry_version == version)
    query = select(FineTunedModel).where(*named)
    return await session.scalar(query)


async def visible(session: AsyncSession, visible: ColumnElement[bool]) -> Sequence[FineTunedModel]:
    """Models not deleted that the list filter lets the caller read, oldest first."""
    query = select(FineTunedModel).where(visible, FineTunedModel.deleted_at.is_(None))
    return (await session.scalars(query.order_by(FineTunedModel.created_at))).all()


async def weight_paths(
    session: AsyncSession, *, owner_id: str | None = None, organization_id: str | None = None
) -> list[str]:
    """The adapter and merged-weight folders of the models not deleted, of one user or organization."""
    query = select(FineTunedModel.adapter_path, FineTunedModel.merged_path).where(FineTunedModel.deleted_at.is_(None))
    if owner_id is not None:
        query = query.where(FineTunedModel.owner_id == owner_id)
    if organization_id is not None:
        query = query.where(FineTunedModel.organization_id == organization_id)
    return [path for row in (await session.execute(query)).all() for path in row if path]


async def models_page(
    session: AsyncSession,
    *,
    owner_id: str | None,
    organization_id: str | None,
    base_model: str | None,
    include_deleted: bool,
    after: str | None,
    limit: int,
) -> tuple[Sequence[FineTunedModel], bool]:
    query = select(FineTunedModel)
    if not include_deleted:
        query = query.where(FineTunedModel.deleted_at.is_(None))
    if owner_id:
        query = query.where(FineTunedModel.owner_id == owner_id)
    if organization_id:
        query = query.where(FineTunedModel.organization_id == organization_id)
    if base_model:
        query = query.where(FineTunedModel.base_model == base_model)
    return await fetch_page(session, query, FineTunedModel.id, after=after, limit=limit)
