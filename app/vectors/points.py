"""The few point operations dataset intelligence needs, and their Qdrant implementation.

Every read takes a `FileScope`, so a query can only ever be built with the file,
owner and organization filter in place: results never cross tenants by
construction, not by each caller remembering to add a filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from qdrant_client import QdrantClient, models

SCOPE_FIELDS = ("file_id", "owner_id", "organization_id")


class VectorStoreError(RuntimeError):
    """The vector store refused an operation or could not be reached."""


@dataclass(frozen=True)
class FileScope:
    file_id: str
    owner_id: str
    organization_id: str

    def as_filter(self) -> models.Filter:
        return models.Filter(
            must=[
                models.FieldCondition(key=field, match=models.MatchValue(value=getattr(self, field)))
                for field in SCOPE_FIELDS
            ]
        )


@dataclass(frozen=True)
class ScoredPayload:
    payload: dict[str, Any]
    score: float


@dataclass(frozen=True)
class PointsPage:
    payloads: list[dict[str, Any]]
    vectors: np.ndarray
    next_offset: str | None


class PointStore(Protocol):
    """Implemented by `QdrantPointStore` (in process) and `VectorServiceClient` (over HTTP)."""

    def ensure_collection(self, dimension: int) -> None: ...

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]) -> None: ...

    def delete_file(self, file_id: str) -> None: ...

    def count(self, scope: FileScope) -> int: ...

    def query(self, scope: FileScope, vector: np.ndarray, limit: int) -> list[ScoredPayload]: ...

    def scroll(self, scope: FileScope, offset: str | None, limit: int) -> PointsPage: ...

    def close(self) -> None: ...


class QdrantPointStore:
    """qdrant-client against a server (`url`) or in local mode (`path`, one process only)."""

    def __init__(
        self,
        collection: str,
        *,
        url: str | None = None,
        api_key: str | None = None,
        path: Path | None = None,
        shared_between_threads: bool = False,
    ) -> None:
        if (url is None) == (path is None):
            raise ValueError("give exactly one of url (Qdrant server) or path (local mode)")
        self.collection = collection
        self.is_server = url is not None
        if url is not None:
            self._client = QdrantClient(url=url, api_key=api_key)
        else:
            # The vector service serves requests from a thread pool behind its own lock;
            # SQLite's same-thread check would refuse that even though access is serialized.
            self._client = QdrantClient(path=str(path), force_disable_check_same_thread=shared_between_threads)
        self._dimension: int | None = None

    def ensure_collection(self, dimension: int) -> None:
        if self._dimension == dimension:
            return
        if not self._client.collection_exists(self.collection):
            self._create_collection(dimension)
        existing = self._stored_dimension()
        if existing != dimension:
            raise VectorStoreError(
                f"collection {self.collection} holds {existing}-dimensional vectors; "
                f"the embedding model makes {dimension}"
            )
        self._dimension = dimension

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]) -> None:
        if len(ids) == 0:
            return
        batch = models.Batch(ids=list(ids), vectors=vectors.tolist(), payloads=list(payloads))
        self._client.upsert(self.collection, points=batch, wait=True)

    def delete_file(self, file_id: str) -> None:
        if not self._client.collection_exists(self.collection):
            return
        selector = models.FilterSelector(
            filter=models.Filter(must=[models.FieldCondition(key="file_id", match=models.MatchValue(value=file_id))])
        )
        self._client.delete(self.collection, points_selector=selector, wait=True)

    def count(self, scope: FileScope) -> int:
        return self._client.count(self.collection, count_filter=scope.as_filter(), exact=True).count

    def query(self, scope: FileScope, vector: np.ndarray, limit: int) -> list[ScoredPayload]:
        response = self._client.query_points(
            self.collection, query=vector.tolist(), query_filter=scope.as_filter(), limit=limit
        )
        return [ScoredPayload(point.payload or {}, point.score) for point in response.points]

    def scroll(self, scope: FileScope, offset: str | None, limit: int) -> PointsPage:
        records, next_offset = self._client.scroll(
            self.collection,
            scroll_filter=scope.as_filter(),
            offset=offset,
            limit=limit,
            with_payload=True,
            with_vectors=True,
        )
        dimension = self._dimension or self._stored_dimension()
        vectors = np.array([record.vector for record in records], dtype=np.float32).reshape(-1, dimension)
        return PointsPage(
            payloads=[record.payload or {} for record in records],
            vectors=vectors,
            next_offset=None if next_offset is None else str(next_offset),
        )

    def close(self) -> None:
        self._client.close()

    def _create_collection(self, dimension: int) -> None:
        try:
            self._client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE),
            )
        except Exception:
            # Another worker may have created it between our check and our create.
            if not self._client.collection_exists(self.collection):
                raise
            return
        if self.is_server:
            self._create_payload_indexes()

    def _create_payload_indexes(self) -> None:
        """Server only: local mode ignores payload indexes and warns about them."""
        tenant = models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
        self._client.create_payload_index(self.collection, "organization_id", field_schema=tenant)
        for field in ("file_id", "owner_id"):
            self._client.create_payload_index(self.collection, field, field_schema=models.PayloadSchemaType.KEYWORD)

    def _stored_dimension(self) -> int:
        vectors = self._client.get_collection(self.collection).config.params.vectors
        if not isinstance(vectors, models.VectorParams):
            raise VectorStoreError(f"collection {self.collection} does not hold one unnamed vector")
        return vectors.size
