"""CPU-queue tasks of the files domain: embed a file's examples into Qdrant, or remove them."""

from __future__ import annotations

import logging

from app.core.celery_app import TASK_FILE_OVERLAP, TASK_INDEX_FILE, TASK_SEARCH_FILE, celery_app
from app.core.config import get_settings
from app.core.worker_context import WorkerContext, run_in_context
from app.files import repository
from app.files.service import storage_path
from app.files.tables import File
from app.files.vectors import vector_store

logger = logging.getLogger(__name__)


@celery_app.task(name=TASK_INDEX_FILE, acks_late=True)
def index_vectors(file_id: str) -> str:
    return run_in_context(lambda context: index_file(context, file_id))


async def index_file(context: WorkerContext, file_id: str) -> str:
    """Idempotent: point ids are derived from (file, line), so a re-run rewrites the same points."""
    async with context.sessionmaker() as session:
        row = await repository.get(session, file_id)
        if row is None:
            return "missing"
        store = vector_store(context.settings)
        if row.deleted_at is not None:
            store.delete_file(file_id)
            return "deleted"
        if row.purpose != "fine-tune":
            return "skipped"
        row.index_status = "indexing"
        await session.commit()
        try:
            store.index_file(file_id, row.owner_id, row.organization_id, storage_path(context.settings, row))
            report = store.duplicate_report(file_id, row.owner_id, row.organization_id)
        except Exception as error:
            logger.exception("indexing file %s failed", file_id)
            row.index_status = "failed"
            row.status_details = f"Dataset indexing failed: {type(error).__name__}: {error}"[:500]
            await session.commit()
            raise
        await session.refresh(row)
        if row.deleted_at is not None:  # deleted while we indexed: take the vectors back out
            store.delete_file(file_id)
            return "deleted"
        row.index_status = "indexed"
        row.duplicate_report = report.as_dict()
        await session.commit()
    return "indexed"


@celery_app.task(name=TASK_SEARCH_FILE)
def search(file_id: str, owner_id: str, organization_id: str, query: str, limit: int) -> list[dict[str, object]]:
    """Runs where the embedding model lives, so the API process needs no torch."""
    hits = vector_store(get_settings()).search(file_id, owner_id, organization_id, query, limit)
    return [{"line": hit.line, "score": round(float(hit.score), 4), "text": hit.excerpt} for hit in hits]


async def ensure_indexed(context: WorkerContext, file_id: str) -> File | None:
    """Index a file now if its indexing task has not run yet (idempotent)."""
    async with context.sessionmaker() as session:
        row = await repository.get(session, file_id)
    if row is None or row.deleted_at is not None:
        return None
    if row.index_status != "indexed":
        await index_file(context, file_id)
    return row


async def overlap_report(context: WorkerContext, training_file: str, validation_file: str) -> dict[str, object] | None:
    """Validation examples that are near-duplicates of training examples (same owner's files)."""
    training = await ensure_indexed(context, training_file)
    validation = await ensure_indexed(context, validation_file)
    if training is None or validation is None or training.owner_id != validation.owner_id:
        return None
    report = vector_store(context.settings).overlap(
        training.id, validation.id, training.owner_id, training.organization_id
    )
    return report.as_dict()


@celery_app.task(name=TASK_FILE_OVERLAP)
def overlap(training_file: str, validation_file: str) -> dict[str, object] | None:
    return run_in_context(lambda context: overlap_report(context, training_file, validation_file))
