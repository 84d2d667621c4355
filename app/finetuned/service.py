"""Models: allowed base models and the caller's fine-tuned models, with their downloadable weights."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import Authorizer, Kind, Principal
from app.catalog import repository as catalog
from app.catalog.tables import CatalogEntry
from app.core.database import utcnow
from app.core.errors import BadRequest, NotFound
from app.finetuned import repository
from app.finetuned.tables import FineTunedModel

ARTIFACT_KINDS = ("adapter", "merged", "model")


async def list_visible(
    session: AsyncSession, authorizer: Authorizer, principal: Principal
) -> tuple[Sequence[CatalogEntry], Sequence[FineTunedModel]]:
    visible = await authorizer.list_filter(principal, Kind.MODEL, "read", FineTunedModel)
    return await catalog.list_allowed(session), await repository.visible(session, visible)


async def get_fine_tuned(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, model_id: str, action: str = "read"
) -> FineTunedModel:
    row = await repository.get(session, model_id)
    if row is not None and row.deleted_at is not None:
        row = None
    return await authorizer.require_row(principal, Kind.MODEL, model_id, row, action)


async def get_any(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, model_id: str
) -> CatalogEntry | FineTunedModel:
    if model_id.startswith("ft:"):
        return await get_fine_tuned(session, authorizer, principal, model_id)
    entry = await catalog.get(session, model_id)
    if entry is None or not entry.allowed:
        raise NotFound(f"The model '{model_id}' does not exist", param="model", code="model_not_found")
    return entry


async def delete(session: AsyncSession, authorizer: Authorizer, principal: Principal, model_id: str) -> FineTunedModel:
    if not model_id.startswith("ft:"):
        raise NotFound(f"The model '{model_id}' does not exist", param="model", code="model_not_found")
    row = await get_fine_tuned(session, authorizer, principal, model_id, "delete")
    row.deleted_at = utcnow()
    for path in (row.adapter_path, row.merged_path):
        if path:
            shutil.rmtree(path, ignore_errors=True)
    await session.flush()
    return row


def artifact_root(row: FineTunedModel, kind: str) -> Path:
    if kind not in ARTIFACT_KINDS:
        raise BadRequest(f"kind must be one of {', '.join(ARTIFACT_KINDS)}", param="kind")
    path = row.merged_path if kind == "merged" else row.adapter_path
    if not path or not Path(path).is_dir():
        raise NotFound(f"Model '{row.id}' has no {kind} weights.", param="kind", code="artifact_not_found")
    return Path(path)
