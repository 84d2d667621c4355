"""The embedded stack's answer to local mode's one-process rule, checked with real processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.vectors.client import VectorServiceClient
from app.vectors.embedder import Embedder
from app.vectors.points import QdrantPointStore, VectorStoreError
from app.vectors.store import VectorStore

from .conftest import chat_line, write_jsonl
from .corpus import DISTINCT, PARAPHRASES

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_environment() -> dict[str, str]:
    # One torch thread: the child and this process embed at the same time on a small machine.
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vector service exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise TimeoutError(f"vector service at {url} not healthy after {seconds} s")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    path, port = tmp_path / "qdrant", free_port()
    command = [sys.executable, "-m", "app.vectors.server", "--path", str(path), "--port", str(port)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=child_environment())
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        yield url, path
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_local_mode_folder_cannot_be_opened_by_a_second_process(service: tuple[str, Path]) -> None:
    """Why the service exists: the folder is locked by the process that owns it."""
    _, path = service
    with pytest.raises(RuntimeError, match="already accessed by another instance"):
        QdrantPointStore("dataset_examples", path=path)


def test_one_process_indexes_while_another_searches(
    service: tuple[str, Path], embedder: Embedder, tmp_path: Path
) -> None:
    url, _ = service
    examples = DISTINCT + [pair[0] for pair in PARAPHRASES]
    records = [chat_line(example) for example in examples]
    path = write_jsonl(tmp_path / "big.jsonl", records)
    # Small upsert chunks, so searches land between them.
    worker = [sys.executable, str(Path(__file__).with_name("index_worker.py")), url]
    indexer = subprocess.Popen(
        [*worker, "file-big", "u-1", "o-1", str(path), "16"],
        cwd=REPO_ROOT,
        env=child_environment(),
        stdout=subprocess.PIPE,
    )
    store = VectorStore(VectorServiceClient(url), embedder)
    seen_counts = set()
    while indexer.poll() is None:
        seen_counts.add(store.count("file-big", "u-1", "o-1"))
        store.search("file-big", "u-1", "o-1", "capital city of Canada", limit=3)
        time.sleep(0.5)
    output, _ = indexer.communicate()
    assert indexer.returncode == 0
    assert json.loads(output)["indexed"] == len(records)

    assert any(0 < count < len(records) for count in seen_counts), seen_counts
    assert store.count("file-big", "u-1", "o-1") == len(records)
    hits = store.search("file-big", "u-1", "o-1", "What is the capital of Canada?", limit=3)
    assert hits[0].line == examples.index(("What is the capital of Canada?", "Ottawa.")) + 1
    assert store.search("file-big", "u-2", "o-1", "What is the capital of Canada?") == []


def test_client_reports_refusals_and_absence_as_vector_store_errors(service: tuple[str, Path]) -> None:
    url, _ = service
    client = VectorServiceClient(url)
    client.ensure_collection(384)
    with pytest.raises(VectorStoreError, match="384-dimensional"):
        client.ensure_collection(16)
    with pytest.raises(VectorStoreError, match="unreachable"):
        VectorServiceClient(f"http://127.0.0.1:{free_port()}").ensure_collection(384)
