"""One embedding model for the session, a fresh local-mode store per test, JSONL builders."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from app.vectors.embedder import Embedder, get_embedder
from app.vectors.points import QdrantPointStore
from app.vectors.store import RECOMMENDED_NEAR_DUPLICATE_THRESHOLD, VectorStore

from .corpus import Example

SYSTEM_PROMPT = "You are a helpful assistant for a large online community. Answer clearly and briefly."
# Tuned on tests/vectors/corpus.py; the figures are in the docstring of app/vectors/store.py.
TUNED_THRESHOLD = RECOMMENDED_NEAR_DUPLICATE_THRESHOLD


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return get_embedder()


@pytest.fixture
def store(tmp_path: Path, embedder: Embedder) -> Iterator[VectorStore]:
    points = QdrantPointStore("dataset_examples", path=tmp_path / "qdrant")
    yield VectorStore(points, embedder, near_duplicate_threshold=TUNED_THRESHOLD)
    points.close()


def chat_line(example: Example, system: bool = True) -> dict[str, Any]:
    user, assistant = example
    messages = [{"role": "system", "content": SYSTEM_PROMPT}] if system else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return {"messages": messages}


def preference_line(example: Example) -> dict[str, Any]:
    user, assistant = example
    return {
        "input": {"messages": [{"role": "user", "content": user}]},
        "preferred_output": [{"role": "assistant", "content": assistant}],
        "non_preferred_output": [{"role": "assistant", "content": "I don't know."}],
    }


def write_jsonl(path: Path, records: Sequence[dict[str, Any] | str]) -> Path:
    """Records are JSON-encoded; plain strings are written as they are (blank or broken lines)."""
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write((record if isinstance(record, str) else json.dumps(record)) + "\n")
    return path


def shuffled(records: list[Any], seed: int) -> list[Any]:
    copy = list(records)
    random.Random(seed).shuffle(copy)
    return copy
