"""Models: allowed base models, the caller's fine-tuned models and their checkpoint models, with their weights.

A succeeded job's checkpoints still on disk are models of their own, `ft:…:ckpt-step-N`, as on
OpenAI: listed, retrieved and deleted one by one. Deleting the fine-tuned model leaves them (the
delete answer lists them); each goes with its own delete, which removes its files too.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import Authorizer, Forbidden, Kind, Principal
from app.authz.errors import refused
from app.catalog import repository as catalog
from app.catalog.tables import CatalogEntry
from app.core.database import utcnow
from app.core.errors import BadRequest, NotFound
from app.finetuned import repository
from app.finetuned.tables import FineTunedModel
from app.jobs import repository as jobs
from app.jobs.schemas import checkpoint_model_name, split_checkpoint_model
from app.jobs.tables import Checkpoint, Job

ARTIFACT_KINDS = ("adapter", "merged", "model")


@dataclass(frozen=True)
class CheckpointModel:
    """A checkpoint of a succeeded job, seen as the model `ft:…:ckpt-step-N`."""

    checkpoint: Checkpoint
    job: Job

    @property
    def id(self) -> str:
        return checkpoint_model_name(self.job.fine_tuned_model or "", self.checkpoint.step_number)


AnyModel = CatalogEntry | FineTunedModel | CheckpointModel


def _unknown(model_id: str) -> NotFound:
    return NotFound(f"The model '{model_id}' does not exist", param="model", code="model_not_found")


async def list_visible(
    session: AsyncSession, authorizer: Authorizer, principal: Principal
) -> tuple[Sequence[CatalogEntry], Sequence[FineTunedModel], list[CheckpointModel]]:
    visible = await authorizer.list_filter(principal, Kind.MODEL, "read", FineTunedModel)
    # A checkpoint's policy reads its job's owner and organization: the filter is over the jobs table.
    visible_jobs = await authorizer.list_filter(principal, Kind.CHECKPOINT, "read", Job)
    checkpoints = [CheckpointModel(*pair) for pair in await jobs.checkpoint_models(session, visible_jobs)]
    return await catalog.list_allowed(session), await repository.visible(session, visible), checkpoints


async def get_fine_tuned(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, model_id: str, action: str = "read"
) -> FineTunedModel:
    row = await repository.get(session, model_id)
    if row is not None and row.deleted_at is not None:
        row = None
    return await authorizer.require_row(principal, Kind.MODEL, model_id, row, action)


async def get_checkpoint_model(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, model_id: str, action: str = "read"
) -> CheckpointModel:
    """`ft:…:ckpt-step-N` of a succeeded job, if the caller may `action` it (its job's owner decides)."""
    named = split_checkpoint_model(model_id)
    found = await jobs.checkpoint_model(session, *named) if named else None
    if found is None:
        raise _unknown(model_id)
    checkpoint, job = found
    try:
        await authorizer.require_row(principal, Kind.CHECKPOINT, model_id, checkpoint, action, attrs_from=job)
    except Forbidden:  # worded as the model it is here, like every other answer about a model
        raise refused(Kind.MODEL, model_id, action) from None
    except NotFound:
        raise _unknown(model_id) from None
    return CheckpointModel(checkpoint, job)


async def get_any(session: AsyncSession, authorizer: Authorizer, principal: Principal, model_id: str) -> AnyModel:
    if split_checkpoint_model(model_id):
        return await get_checkpoint_model(session, authorizer, principal, model_id)
    if model_id.startswith("ft:"):
        return await get_fine_tuned(session, authorizer, principal, model_id)
    entry = await catalog.get(session, model_id)
    if entry is None or not entry.allowed:
        raise _unknown(model_id)
    return entry


async def delete(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, model_id: str
) -> tuple[str, list[str]]:
    """Delete a fine-tuned model or a checkpoint model with its weights: (its id, the checkpoint models kept)."""
    if split_checkpoint_model(model_id):
        found = await get_checkpoint_model(session, authorizer, principal, model_id, "delete")
        found.checkpoint.deleted = True
        shutil.rmtree(found.checkpoint.path, ignore_errors=True)
        await session.flush()
        return found.id, []
    if not model_id.startswith("ft:"):
        raise _unknown(model_id)
    row = await get_fine_tuned(session, authorizer, principal, model_id, "delete")
    row.deleted_at = utcnow()
    for path in (row.adapter_path, row.merged_path):
        if path:
            shutil.rmtree(path, ignore_errors=True)
    await session.flush()
    kept = await jobs.checkpoint_models(session, Job.id == row.job_id)
    return row.id, [CheckpointModel(*pair).id for pair in kept]


def artifact_root(row: FineTunedModel, kind: str) -> Path:
    if kind not in ARTIFACT_KINDS:
        raise BadRequest(f"kind must be one of {', '.join(ARTIFACT_KINDS)}", param="kind")
    path = row.merged_path if kind == "merged" else row.adapter_path
    if not path or not Path(path).is_dir():
        raise NotFound(f"Model '{row.id}' has no {kind} weights.", param="kind", code="artifact_not_found")
    return Path(path)
