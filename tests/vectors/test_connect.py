from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core.config import Settings
from app.vectors.client import VectorServiceClient
from app.vectors.connect import open_point_store, vector_backend
from app.vectors.points import QdrantPointStore


def settings(tmp_path: Path, **values: Any) -> Settings:
    """Settings from these values alone: a developer's .env or QDRANT_URL must not decide the test."""
    values.setdefault("qdrant_url", None)
    return Settings(_env_file=None, environment="development", data_dir=tmp_path, **values)


def test_a_configured_qdrant_server_wins_over_the_embedded_service(tmp_path: Path) -> None:
    # Decided without building the client: a server client probes its server's version in a thread.
    configured = settings(tmp_path, qdrant_url="http://qdrant:6333")
    assert vector_backend(configured, vector_service_url="http://127.0.0.1:6335") == "qdrant_server"
    assert vector_backend(settings(tmp_path), vector_service_url="http://127.0.0.1:6335") == "vector_service"
    assert vector_backend(settings(tmp_path)) == "local"


def test_without_a_server_the_embedded_vector_service_is_used(tmp_path: Path) -> None:
    store = open_point_store(settings(tmp_path), vector_service_url="http://127.0.0.1:6335")
    assert isinstance(store, VectorServiceClient)
    assert store.base_url == "http://127.0.0.1:6335"
    store.close()


def test_with_neither_this_process_opens_local_mode_under_the_data_dir(tmp_path: Path) -> None:
    store = open_point_store(settings(tmp_path))
    assert isinstance(store, QdrantPointStore) and not store.is_server
    assert (tmp_path / "qdrant" / ".lock").exists()
    store.close()
