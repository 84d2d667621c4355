"""CPU-queue tasks of the files domain: embed a file's examples into Qdrant, or remove them."""

from __future__ import annotations

import logging

from app.core.celery_app import TASK_INDEX_FILE, TASK_SEARCH_FILE, celery_app
from app.core.worker_context import WorkerContext, run_in_context
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
        row = await session.get(File, file_id)
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
    from app.core.config import get_settings

    hits = vector_store(get_settings()).search(file_id, owner_id, organization_id, query, limit)
    return [{"line": hit.line, "score": round(float(hit.score), 4), "text": hit.excerpt} for hit in hits]
