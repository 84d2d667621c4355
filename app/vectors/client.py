"""`PointStore` over HTTP, talking to `app.vectors.server` (the embedded stack's vector owner)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np
from pydantic import BaseModel

from app.vectors import wire
from app.vectors.points import FileScope, PointsPage, ScoredPayload, VectorStoreError


class VectorServiceClient:
    """Same operations as `QdrantPointStore`; many processes may hold one at a time."""

    def __init__(self, base_url: str, timeout_seconds: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_seconds)
        self._dimension: int | None = None

    def health(self) -> wire.HealthAnswer:
        return wire.HealthAnswer.model_validate(self._call("GET", "/health"))

    def ensure_collection(self, dimension: int) -> None:
        # Asked once per client, like QdrantPointStore: every search starts with this call.
        if self._dimension == dimension:
            return
        self._call("PUT", "/collection", wire.CollectionBody(dimension=dimension))
        self._dimension = dimension

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]) -> None:
        if len(ids) == 0:
            return
        body = wire.UpsertBody(
            ids=list(ids),
            dimension=vectors.shape[1],
            vectors=wire.encode_vectors(vectors),
            payloads=list(payloads),
        )
        self._call("POST", "/points/upsert", body)

    def delete_file(self, file_id: str) -> None:
        self._call("POST", "/points/delete-file", wire.DeleteFileBody(file_id=file_id))

    def count(self, scope: FileScope) -> int:
        return wire.CountAnswer.model_validate(self._call("POST", "/points/count", wire.ScopeBody.of(scope))).count

    def query(self, scope: FileScope, vector: np.ndarray, limit: int) -> list[ScoredPayload]:
        body = wire.QueryBody(scope=wire.ScopeBody.of(scope), vector=vector.tolist(), limit=limit)
        answer = wire.QueryAnswer.model_validate(self._call("POST", "/points/query", body))
        return [ScoredPayload(hit.payload, hit.score) for hit in answer.hits]

    def scroll(self, scope: FileScope, offset: str | None, limit: int) -> PointsPage:
        body = wire.ScrollBody(scope=wire.ScopeBody.of(scope), offset=offset, limit=limit)
        answer = wire.ScrollAnswer.model_validate(self._call("POST", "/points/scroll", body))
        return PointsPage(answer.payloads, wire.decode_vectors(answer.vectors, answer.dimension), answer.next_offset)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: BaseModel | None = None) -> Any:
        content = None if body is None else body.model_dump_json()
        headers = {"content-type": "application/json"}
        try:
            response = self._http.request(method, path, content=content, headers=headers)
        except httpx.TransportError as error:
            raise VectorStoreError(f"vector service unreachable at {self.base_url}: {error}") from error
        if response.is_error:
            raise VectorStoreError(f"vector service answered {response.status_code}: {_message(response)}")
        return response.json() if response.content else None


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:500]
