"""Indexing, search, tenancy, deletion and idempotency against a real local-mode Qdrant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.vectors.points import FileScope, QdrantPointStore, VectorStoreError
from app.vectors.store import VectorStore, point_id

from .conftest import chat_line, preference_line, write_jsonl
from .corpus import DISTINCT, PARAPHRASES

ACME_MARK = "[acme]"


def topic_file(path: Path, mark: str = "") -> Path:
    """Forty varied examples; `mark` prefixes every question so a hit tells whose file it came from."""
    examples = DISTINCT[:30] + [pair[0] for pair in PARAPHRASES[:10]]
    records = [chat_line((f"{mark} {user}".strip(), answer)) for user, answer in examples]
    return write_jsonl(path, records)


def line_of(question: str) -> int:
    questions = [user for user, _ in DISTINCT[:30]] + [pair[0][0] for pair in PARAPHRASES[:10]]
    return questions.index(question) + 1


def test_search_finds_the_example_by_meaning(store: VectorStore, tmp_path: Path) -> None:
    store.index_file("file-a", "user-a", "org-a", topic_file(tmp_path / "a.jsonl"))
    hits = store.search("file-a", "user-a", "org-a", "my loaf of bread is heavy and doesn't rise", limit=3)
    assert hits[0].line == line_of("Why does my sourdough bread come out dense?")
    assert hits[0].excerpt.startswith("user: Why does my sourdough bread")
    assert len(hits) == 3 and hits[0].score > hits[1].score >= hits[2].score

    hits = store.search("file-a", "user-a", "org-a", "how should I undo a commit in git and keep the work")
    assert hits[0].line == line_of("How do I undo the last git commit but keep my changes?")


def test_each_tenant_searches_only_its_own_file(store: VectorStore, tmp_path: Path) -> None:
    store.index_file("file-a", "user-a", "org-a", topic_file(tmp_path / "a.jsonl"))
    store.index_file("file-b", "user-b", "org-b", topic_file(tmp_path / "b.jsonl", mark=ACME_MARK))
    query = "What is the capital of Australia?"

    own_a = store.search("file-a", "user-a", "org-a", query, limit=40)
    own_b = store.search("file-b", "user-b", "org-b", query, limit=40)
    assert len(own_a) == len(own_b) == 40
    assert not any(ACME_MARK in hit.excerpt for hit in own_a)
    assert all(ACME_MARK in hit.excerpt for hit in own_b)

    # Knowing another tenant's file id is not enough: owner and organization must match too.
    assert store.search("file-a", "user-b", "org-b", query) == []
    assert store.search("file-a", "user-a", "org-b", query) == []
    assert store.search("file-a", "user-b", "org-a", query) == []
    assert store.duplicate_report("file-b", "user-a", "org-a").counts["lines"] == 0
    assert store.overlap("file-a", "file-b", "user-a", "org-a").validation_lines == 0


def test_delete_removes_the_files_vectors_and_nothing_else(store: VectorStore, tmp_path: Path) -> None:
    store.index_file("file-a", "user-a", "org-a", topic_file(tmp_path / "a.jsonl"))
    store.index_file("file-b", "user-a", "org-a", topic_file(tmp_path / "b.jsonl"))
    store.delete_file("file-a")
    assert store.count("file-a", "user-a", "org-a") == 0
    assert store.search("file-a", "user-a", "org-a", "bread") == []
    assert store.count("file-b", "user-a", "org-a") == 40


def test_indexing_twice_keeps_one_point_per_line(store: VectorStore, tmp_path: Path) -> None:
    path = topic_file(tmp_path / "a.jsonl")
    first = store.index_file("file-a", "user-a", "org-a", path)
    second = store.index_file("file-a", "user-a", "org-a", path)
    assert first.indexed == second.indexed == 40
    assert store.count("file-a", "user-a", "org-a") == 40
    assert point_id("file-a", 1) == point_id("file-a", 1) != point_id("file-b", 1)


def test_payload_carries_line_role_mix_tokens_and_excerpt(store: VectorStore, tmp_path: Path) -> None:
    records: list[dict[str, Any] | str] = [chat_line(DISTINCT[0]), "{not json", "", preference_line(DISTINCT[1])]
    report = store.index_file("file-a", "user-a", "org-a", write_jsonl(tmp_path / "a.jsonl", records))
    assert (report.indexed, report.skipped_lines) == (2, [2])

    page = store.points.scroll(FileScope("file-a", "user-a", "org-a"), None, 10)
    by_line = {payload["line"]: payload for payload in page.payloads}
    assert sorted(by_line) == [1, 4]
    assert by_line[1]["role_mix"] == {"system": 1, "user": 1, "assistant": 1}
    assert by_line[4]["role_mix"] == {"user": 1, "assistant": 1}
    assert 20 < by_line[1]["token_count"] < 80
    assert by_line[1]["excerpt"].startswith("user: How do I reverse a list in Python?")
    assert page.vectors.shape == (2, store.embedder.dimension)
    assert abs(float(page.vectors[0] @ page.vectors[0]) - 1.0) < 1e-4


def test_a_collection_of_another_vector_size_is_refused(tmp_path: Path) -> None:
    points = QdrantPointStore("dataset_examples", path=tmp_path / "qdrant")
    try:
        points.ensure_collection(8)
        with pytest.raises(VectorStoreError, match="8-dimensional"):
            points.ensure_collection(384)
    finally:
        points.close()
