"""Dataset intelligence: index a file's examples, search them, report duplicates and overlap.

`VectorStore` embeds in the calling process and keeps points in a `PointStore`;
every read is scoped to one file of one owner in one organization. Point ids are
uuid5(file_id, line), so indexing the same file twice replaces its points instead
of adding copies.

Near-duplicate threshold for all-MiniLM-L6-v2, tuned on the hand-written set in
tests/vectors/corpus.py (40 paraphrase pairs, 98 distinct examples including
template siblings such as "capital of Canada" / "capital of Brazil"), chat and
DPO lines, system prompt excluded:

    threshold          0.84   0.86   0.88   0.90   0.92
    pairs found        97.5%  97.5%  95%    90%    75%
    false groups       2      1      1      1      1     (of 138 distinct lines)

Paraphrase pairs score 0.81-0.99 (median ~0.94); distinct siblings reach 0.84.
The one false group left at every threshold is "Celsius to Fahrenheit" versus
"Fahrenheit to Celsius" at 0.97: this model reads them as the same text. 0.88
keeps a margin above the siblings and finds 95% of paraphrases; 0.92 misses a
quarter of them.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.vectors.embedder import Embedder
from app.vectors.examples import LineExample, read_examples
from app.vectors.points import FileScope, PointStore
from app.vectors.similarity import best_matches, connected_groups, pairs_within

POINT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "finetune-mlops/dataset-examples")
INDEX_CHUNK_LINES = 256
SCROLL_PAGE = 1024
MAX_SEARCH_LIMIT = 100
RECOMMENDED_NEAR_DUPLICATE_THRESHOLD = 0.88


def point_id(file_id: str, line: int) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{file_id}:{line}"))


@dataclass(frozen=True)
class IndexReport:
    file_id: str
    indexed: int
    skipped_lines: list[int]
    seconds: float


@dataclass(frozen=True)
class SearchHit:
    line: int
    score: float
    excerpt: str


@dataclass(frozen=True)
class DuplicateReport:
    threshold: float
    exact: list[list[int]]
    near: list[list[int]]
    counts: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OverlapPair:
    validation_line: int
    training_line: int
    score: float


@dataclass(frozen=True)
class OverlapReport:
    threshold: float
    count: int
    validation_lines: int
    pairs: list[OverlapPair] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _FileVectors:
    lines: list[int]
    hashes: list[str]
    vectors: np.ndarray


class VectorStore:
    def __init__(
        self,
        points: PointStore,
        embedder: Embedder,
        near_duplicate_threshold: float = RECOMMENDED_NEAR_DUPLICATE_THRESHOLD,
        index_chunk_lines: int = INDEX_CHUNK_LINES,
    ) -> None:
        self.points = points
        self.embedder = embedder
        self.near_duplicate_threshold = near_duplicate_threshold
        self.index_chunk_lines = index_chunk_lines

    def ensure_collection(self) -> None:
        self.points.ensure_collection(self.embedder.dimension)

    def index_file(self, file_id: str, owner_id: str, organization_id: str, path: Path) -> IndexReport:
        """Embed every readable line and upsert it; unreadable lines are listed, not fatal."""
        started = time.monotonic()
        self.ensure_collection()
        scope = FileScope(file_id, owner_id, organization_id)
        indexed, skipped, chunk = 0, [], []
        for item in read_examples(path):
            if isinstance(item, int):
                skipped.append(item)
                continue
            chunk.append(item)
            if len(chunk) == self.index_chunk_lines:
                indexed += self._upsert_chunk(scope, chunk)
                chunk = []
        indexed += self._upsert_chunk(scope, chunk)
        return IndexReport(file_id, indexed, skipped, round(time.monotonic() - started, 3))

    def delete_file(self, file_id: str) -> None:
        self.points.delete_file(file_id)

    def count(self, file_id: str, owner_id: str, organization_id: str) -> int:
        self.ensure_collection()
        return self.points.count(FileScope(file_id, owner_id, organization_id))

    def search(self, file_id: str, owner_id: str, organization_id: str, query: str, limit: int = 10) -> list[SearchHit]:
        """The lines of one file most similar in meaning to `query`, best first."""
        self.ensure_collection()
        vector = self.embedder.embed([query])[0]
        limit = max(1, min(limit, MAX_SEARCH_LIMIT))
        hits = self.points.query(FileScope(file_id, owner_id, organization_id), vector, limit)
        return [SearchHit(int(hit.payload["line"]), hit.score, str(hit.payload["excerpt"])) for hit in hits]

    def duplicate_report(
        self, file_id: str, owner_id: str, organization_id: str, threshold: float | None = None
    ) -> DuplicateReport:
        """Exact groups share a normalized-text hash; near groups join lines at cosine >= threshold.

        A similarity group whose lines are all one text is already an exact group and
        is not repeated under `near`.
        """
        threshold = self.near_duplicate_threshold if threshold is None else threshold
        stored = self._file_vectors(FileScope(file_id, owner_id, organization_id))
        by_hash: dict[str, list[int]] = defaultdict(list)
        for index, text_hash in enumerate(stored.hashes):
            by_hash[text_hash].append(index)
        exact = sorted(group for group in by_hash.values() if len(group) > 1)
        edges = ((left, right) for left, right, _ in pairs_within(stored.vectors, threshold))
        near = [
            group
            for group in connected_groups(len(stored.lines), edges)
            if len({stored.hashes[index] for index in group}) > 1
        ]
        return DuplicateReport(
            threshold=threshold,
            exact=[[stored.lines[index] for index in group] for group in exact],
            near=[[stored.lines[index] for index in group] for group in near],
            counts={
                "lines": len(stored.lines),
                "exact_groups": len(exact),
                "exact_duplicate_lines": sum(len(group) - 1 for group in exact),
                "near_groups": len(near),
                "near_duplicate_lines": sum(len(group) - 1 for group in near),
            },
        )

    def overlap(
        self,
        train_file_id: str,
        validation_file_id: str,
        owner_id: str,
        organization_id: str,
        threshold: float | None = None,
    ) -> OverlapReport:
        """Validation lines whose closest training line reaches the threshold, best pairs first."""
        threshold = self.near_duplicate_threshold if threshold is None else threshold
        training = self._file_vectors(FileScope(train_file_id, owner_id, organization_id))
        validation = self._file_vectors(FileScope(validation_file_id, owner_id, organization_id))
        matches = best_matches(validation.vectors, training.vectors, threshold)
        pairs = [
            OverlapPair(validation.lines[row], training.lines[column], score)
            for row, column, score in sorted(matches, key=lambda match: -match[2])
        ]
        return OverlapReport(threshold, len(pairs), len(validation.lines), pairs)

    def _upsert_chunk(self, scope: FileScope, chunk: list[LineExample]) -> int:
        if not chunk:
            return 0
        vectors = self.embedder.embed([item.example.text for item in chunk])
        ids = [point_id(scope.file_id, item.line) for item in chunk]
        self.points.upsert(ids, vectors, [_payload(scope, item) for item in chunk])
        return len(chunk)

    def _file_vectors(self, scope: FileScope) -> _FileVectors:
        self.ensure_collection()
        payloads: list[dict[str, Any]] = []
        pages: list[np.ndarray] = [np.zeros((0, self.embedder.dimension), dtype=np.float32)]
        offset: str | None = None
        while True:
            page = self.points.scroll(scope, offset, SCROLL_PAGE)
            payloads.extend(page.payloads)
            pages.append(page.vectors)
            offset = page.next_offset
            if offset is None:
                break
        order = sorted(range(len(payloads)), key=lambda index: int(payloads[index]["line"]))
        vectors = np.concatenate(pages)[order] if order else pages[0]
        return _FileVectors(
            lines=[int(payloads[index]["line"]) for index in order],
            hashes=[str(payloads[index]["text_hash"]) for index in order],
            vectors=vectors,
        )


def _payload(scope: FileScope, item: LineExample) -> dict[str, Any]:
    return {
        "file_id": scope.file_id,
        "owner_id": scope.owner_id,
        "organization_id": scope.organization_id,
        "line": item.line,
        "role_mix": item.example.role_mix,
        "token_count": item.example.token_count,
        "text_hash": item.example.text_hash,
        "excerpt": item.example.excerpt,
    }
