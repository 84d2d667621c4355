"""The vector server: a tiny HTTP service that owns a local-mode Qdrant folder for the embedded stack.

qdrant-client local mode keeps the whole collection in the memory of the one
process that opened the folder and takes an exclusive, non-blocking file lock on
``<path>/.lock``: a second process gets ``RuntimeError: Storage folder ... is
already accessed by another instance``, and even without the lock each process
would work on its own in-memory copy and overwrite the other's SQLite rows. So
local mode cannot be shared between the API (search) and the CPU worker
(indexing). This process is the single owner of the folder and serves the
`PointStore` operations over HTTP; `VectorServiceClient` speaks to it. Embedding
stays with the callers, so this process never loads torch.

    python -m app.vectors.server --path data/qdrant --port 6335

It binds 127.0.0.1 by default and has no authentication: it is a loopback
companion of the embedded stack; with Docker or any multi-host setup, run a real
Qdrant server and set QDRANT_URL instead.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.vectors import wire
from app.vectors.points import QdrantPointStore, VectorStoreError

DEFAULT_PORT = 6335
DEFAULT_COLLECTION = "dataset_examples"

Result = TypeVar("Result")


class _SerializedStore:
    """Local mode is not thread-safe; FastAPI runs sync handlers on a thread pool."""

    def __init__(self, store: QdrantPointStore) -> None:
        self.store = store
        self._lock = threading.Lock()

    def run(self, operation: Callable[[QdrantPointStore], Result]) -> Result:
        with self._lock:
            return operation(self.store)


def create_app(path: Path, collection: str = DEFAULT_COLLECTION) -> FastAPI:
    holder: dict[str, _SerializedStore] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        store = QdrantPointStore(collection, path=path, shared_between_threads=True)
        holder["store"] = _SerializedStore(store)
        try:
            yield
        finally:
            store.close()

    app = FastAPI(title="Vector service (embedded Qdrant)", lifespan=lifespan)

    def store() -> _SerializedStore:
        return holder["store"]

    @app.exception_handler(VectorStoreError)
    async def _refused(_: Request, error: VectorStoreError) -> JSONResponse:
        body = {"error": {"message": str(error), "type": "invalid_request_error", "code": "vector_store"}}
        return JSONResponse(status_code=409, content=body)

    @app.get("/health")
    def health() -> wire.HealthAnswer:
        """Liveness, and which collection this service owns."""
        return wire.HealthAnswer(status="ok", collection=collection)

    @app.put("/collection", status_code=204)
    def ensure_collection(body: wire.CollectionBody) -> None:
        """Create the collection if missing; refuse a different vector size."""
        store().run(lambda points: points.ensure_collection(body.dimension))

    @app.post("/points/upsert", status_code=204)
    def upsert(body: wire.UpsertBody) -> None:
        """Insert or replace points by id."""
        vectors = wire.decode_vectors(body.vectors, body.dimension)
        if not len(body.ids) == len(body.payloads) == len(vectors):
            raise VectorStoreError("ids, vectors and payloads must have the same length")
        store().run(lambda points: points.upsert(body.ids, vectors, body.payloads))

    @app.post("/points/delete-file", status_code=204)
    def delete_file(body: wire.DeleteFileBody) -> None:
        """Remove every point of one file."""
        store().run(lambda points: points.delete_file(body.file_id))

    @app.post("/points/count")
    def count(body: wire.ScopeBody) -> wire.CountAnswer:
        """Points of one file of one tenant."""
        return wire.CountAnswer(count=store().run(lambda points: points.count(body.scope())))

    @app.post("/points/query")
    def query(body: wire.QueryBody) -> wire.QueryAnswer:
        """Nearest points within one file of one tenant."""
        vector = np.asarray(body.vector, dtype=np.float32)
        hits = store().run(lambda points: points.query(body.scope.scope(), vector, body.limit))
        return wire.QueryAnswer(hits=[wire.HitBody(payload=hit.payload, score=hit.score) for hit in hits])

    @app.post("/points/scroll")
    def scroll(body: wire.ScrollBody) -> wire.ScrollAnswer:
        """One page of a file's points with their vectors."""
        page = store().run(lambda points: points.scroll(body.scope.scope(), body.offset, body.limit))
        return wire.ScrollAnswer(
            payloads=page.payloads,
            dimension=page.vectors.shape[1],
            vectors=wire.encode_vectors(page.vectors),
            next_offset=page.next_offset,
        )

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a local-mode Qdrant folder to other processes.")
    parser.add_argument("--path", type=Path, required=True, help="the Qdrant local-mode folder to own")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--collection", default=DEFAULT_COLLECTION)
    arguments = parser.parse_args(argv)
    uvicorn.run(
        create_app(arguments.path, arguments.collection),
        host=arguments.host,
        port=arguments.port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
