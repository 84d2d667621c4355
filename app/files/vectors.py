"""The dataset-intelligence side of files: one vector store per process, opened on first use."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from app.core.config import Settings

if TYPE_CHECKING:
    from app.vectors.store import VectorStore

_lock = threading.Lock()
_store: VectorStore | None = None


def vector_store(settings: Settings) -> VectorStore:
    """Loads the embedding model once per process (a worker child or an API process)."""
    global _store
    with _lock:
        if _store is None:
            # The vector stack (qdrant-client, the embedder) loads only in a process that embeds or searches.
            from app.vectors.connect import open_vector_store

            _store = open_vector_store(settings, None if settings.qdrant_url else settings.vector_service_url)
            _store.ensure_collection()
        return _store
