"""What a base model's source is, and why a local folder cannot be loaded (named, so it can be fixed).

A local model is read at the same absolute path by every process that loads it: the admin API
(checked when registered), the CPU worker (tokenizer: token counts, validation), the GPU worker
(training) and the serving engine. Under Docker Compose that path is inside the models mount:
a folder of BASE_MODELS_DIR on the host is /models/<folder> in each of those containers.
"""

from __future__ import annotations

import os
from pathlib import Path

# What from_pretrained needs besides config.json: the weights in one of their layouts, and a tokenizer.
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")
MOUNT_HINT = (
    "A local base model must be visible at this same path to the admin API, both Celery workers and the "
    "serving engine; under Docker Compose, put it in BASE_MODELS_DIR on the host and register "
    "/models/<folder> (docs/admin.md, 'Base models')."
)


def is_local(source: str) -> bool:
    return source.startswith("/")


def local_model_problem(path: str) -> str | None:
    """Why the folder `path` cannot be loaded by this process, naming what is missing; None when it can."""
    folder = Path(path)
    if not folder.is_absolute():
        return f"'{path}' is not an absolute path."
    if not folder.is_dir():
        return f"'{path}' does not exist or is not a directory. {MOUNT_HINT}"
    if not os.access(folder, os.R_OK | os.X_OK):
        return f"'{path}' is not readable by uid {os.getuid()}; make the folder and its files world-readable."
    if not (folder / "config.json").is_file():
        return f"'{path}' holds no config.json: it is not a Hugging Face model folder."
    if not any(any(folder.glob(pattern)) for pattern in WEIGHT_PATTERNS):
        return f"'{path}' holds no weights ({', '.join(WEIGHT_PATTERNS)}); copy the whole model folder."
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        return f"'{path}' holds no tokenizer ({', '.join(TOKENIZER_FILES)}); copy the whole model folder."
    return None


def unavailable(model_id: str, source: str, who: str) -> str | None:
    """Why `who` (e.g. "the GPU worker on gpu-host-2") cannot load the catalog entry, or None.

    Hub models are not checked: a missing one is downloaded (or named as missing offline) where it loads.
    """
    if not is_local(source):
        return None
    problem = local_model_problem(source)
    return None if problem is None else f"{who[:1].upper()}{who[1:]} cannot load base model '{model_id}': {problem}"
