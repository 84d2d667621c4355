"""Pick where vectors live from the settings, and build the store callers use.

QDRANT_URL set            -> a real Qdrant server, straight from every process.
a vector service URL      -> the embedded stack's `app.vectors.server`, which
                             owns the local-mode folder (the API and the CPU
                             worker are different processes and local mode
                             admits one process per folder).
neither                   -> local mode on `settings.qdrant_path`, in this
                             process only: scripts, the benchmark, single-process tools.
"""

from __future__ import annotations

from typing import Literal

from app.core.config import Settings
from app.vectors.client import VectorServiceClient
from app.vectors.embedder import get_embedder
from app.vectors.points import PointStore, QdrantPointStore
from app.vectors.store import VectorStore

Backend = Literal["qdrant_server", "vector_service", "local"]


def vector_backend(settings: Settings, vector_service_url: str | None = None) -> Backend:
    if settings.qdrant_url:
        return "qdrant_server"
    return "vector_service" if vector_service_url else "local"


def open_point_store(settings: Settings, vector_service_url: str | None = None) -> PointStore:
    backend = vector_backend(settings, vector_service_url)
    if backend == "qdrant_server":
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantPointStore(settings.qdrant_collection, url=settings.qdrant_url, api_key=api_key)
    if backend == "vector_service" and vector_service_url:
        return VectorServiceClient(vector_service_url)
    return QdrantPointStore(settings.qdrant_collection, path=settings.qdrant_path)


def open_vector_store(settings: Settings, vector_service_url: str | None = None) -> VectorStore:
    """Call in a lifespan or worker-process init: it loads the embedding model once per process."""
    return VectorStore(
        open_point_store(settings, vector_service_url),
        get_embedder(settings.embedding_model, settings.embedding_batch_size),
        near_duplicate_threshold=settings.near_duplicate_threshold,
    )
