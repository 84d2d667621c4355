"""Examples per second: raw `encode`, `Embedder.embed`, and full indexing into local-mode Qdrant.

    python -m bench.embed_throughput [--examples 200] [--batch-size 64]

Indexing = read JSONL + build example text + embed + upsert with payload, the
work the CPU worker does per file. Raw `encode` of the same model on the same
texts in the same run is the ceiling to compare against. Texts are generated
from the model's own vocabulary (seeded) with chat-like lengths: 10-40 words of
question, 30-150 words of answer.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer

from app.vectors.embedder import DEFAULT_MODEL, Embedder, resolve_model_location
from app.vectors.examples import example_from_record
from app.vectors.points import QdrantPointStore
from app.vectors.store import VectorStore, point_id


def vocabulary(model_folder: Path) -> list[str]:
    words = (model_folder / "vocab.txt").read_text(encoding="utf-8").split()
    return [word for word in words if word.isalpha() and word.isascii() and len(word) > 2]


def chat_records(count: int, words: list[str], seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)

    def sentence(low: int, high: int) -> str:
        return " ".join(rng.choices(words, k=rng.randint(low, high)))

    return [
        {
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": sentence(10, 40) + "?"},
                {"role": "assistant", "content": sentence(30, 150) + "."},
            ]
        }
        for _ in range(count)
    ]


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    arguments = parser.parse_args()

    folder = Path(resolve_model_location(DEFAULT_MODEL))
    records = chat_records(arguments.examples, vocabulary(folder), seed=1)
    texts = [example_from_record(record).text for record in records]

    started = time.perf_counter()
    embedder = Embedder(DEFAULT_MODEL, arguments.batch_size)
    load_seconds = time.perf_counter() - started
    raw = SentenceTransformer(str(folder), device="cpu")
    raw.encode(texts[:32], batch_size=arguments.batch_size)  # warm-up: first call pays allocation
    embedder.embed(texts[:32])

    rows = [
        ("raw SentenceTransformer.encode", timed(lambda: raw.encode(texts, batch_size=arguments.batch_size))),
        ("Embedder.embed (normalized)", timed(lambda: embedder.embed(texts))),
    ]
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "bench.jsonl"
        path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
        points = QdrantPointStore("bench", path=Path(scratch) / "qdrant")
        store = VectorStore(points, embedder)
        store.ensure_collection()
        rows.append(("index_file: embed + upsert (local)", timed(lambda: store.index_file("f", "u", "o", path))))
        vectors = embedder.embed(texts[:1]).repeat(len(texts), axis=0)
        ids = [point_id("g", line) for line in range(len(texts))]
        payloads = [{"file_id": "g", "line": line, "excerpt": text[:300]} for line, text in enumerate(texts)]
        rows.append(("upsert only (local, given vectors)", timed(lambda: points.upsert(ids, vectors, payloads))))
        points.close()

    raw_seconds = rows[0][1]
    print(
        f"model {DEFAULT_MODEL}: loaded in {load_seconds:.1f} s, {embedder.dimension} dims, "
        f"torch threads {torch.get_num_threads()}, batch {arguments.batch_size}, {len(texts)} examples"
    )
    print(f"{'stage':<38}{'seconds':>9}{'examples/s':>12}{'vs raw':>8}")
    for name, seconds in rows:
        print(f"{name:<38}{seconds:>9.2f}{len(texts) / seconds:>12.1f}{raw_seconds / seconds:>8.2f}")


if __name__ == "__main__":
    main()
