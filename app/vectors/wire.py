"""Request and answer bodies shared by the vector service and its HTTP client.

Vectors travel as base64 little-endian float32, not JSON number lists: a page of
1024 384-dimensional vectors is 1.5 MB that way instead of ~8 MB of decimal text.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from app.vectors.points import FileScope, VectorStoreError

MAX_PAGE = 4096


def encode_vectors(matrix: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(matrix, dtype="<f4").tobytes()).decode("ascii")


def decode_vectors(data: str, dimension: int) -> np.ndarray:
    flat = np.frombuffer(base64.b64decode(data), dtype="<f4")
    if flat.size % dimension:
        raise VectorStoreError(f"{flat.size} numbers do not split into vectors of {dimension}")
    return flat.reshape(-1, dimension).astype(np.float32)


class ScopeBody(BaseModel):
    file_id: str = Field(min_length=1)
    owner_id: str = Field(min_length=1)
    organization_id: str = Field(min_length=1)

    @classmethod
    def of(cls, scope: FileScope) -> ScopeBody:
        return cls(file_id=scope.file_id, owner_id=scope.owner_id, organization_id=scope.organization_id)

    def scope(self) -> FileScope:
        return FileScope(self.file_id, self.owner_id, self.organization_id)


class CollectionBody(BaseModel):
    dimension: int = Field(gt=0, le=65536)


class UpsertBody(BaseModel):
    ids: list[str]
    dimension: int = Field(gt=0, le=65536)
    vectors: str
    payloads: list[dict[str, Any]]


class DeleteFileBody(BaseModel):
    file_id: str = Field(min_length=1)


class CountAnswer(BaseModel):
    count: int


class QueryBody(BaseModel):
    scope: ScopeBody
    vector: list[float]
    limit: int = Field(ge=1, le=1000)


class HitBody(BaseModel):
    payload: dict[str, Any]
    score: float


class QueryAnswer(BaseModel):
    hits: list[HitBody]


class ScrollBody(BaseModel):
    scope: ScopeBody
    offset: str | None = None
    limit: int = Field(ge=1, le=MAX_PAGE)


class ScrollAnswer(BaseModel):
    payloads: list[dict[str, Any]]
    dimension: int
    vectors: str
    next_offset: str | None


class HealthAnswer(BaseModel):
    status: str
    collection: str
