"""Dataset intelligence: embeddings of training examples in Qdrant.

Semantic search within a file, exact and near-duplicate reports, and
train/validation overlap. No database and no HTTP endpoints here: the CPU Celery
worker indexes and reports, the API searches, both through `VectorStore`.

Sharing local mode between processes: qdrant-client's local mode holds the
collection in the memory of the process that opened the folder and guards the
folder with an exclusive non-blocking lock, so the API and the worker cannot
both open it (verified: the second gets "Storage folder ... is already accessed
by another instance of Qdrant client"; forcing past the lock would leave two
diverging in-memory copies writing one SQLite file). The embedded stack
therefore runs `python -m app.vectors.server --path P --port N`, the single
owner of the folder, and every other process uses `VectorServiceClient`, which
implements the same `PointStore` operations as the direct `QdrantPointStore`.
With QDRANT_URL set, every process talks to the Qdrant server directly
(`connect.open_point_store` picks). Embedding always happens in the calling
process, so the service never loads a model.
"""

from app.vectors.points import FileScope, PointStore, VectorStoreError
from app.vectors.store import DuplicateReport, IndexReport, OverlapReport, SearchHit, VectorStore

__all__ = [
    "DuplicateReport",
    "FileScope",
    "IndexReport",
    "OverlapReport",
    "PointStore",
    "SearchHit",
    "VectorStore",
    "VectorStoreError",
]
