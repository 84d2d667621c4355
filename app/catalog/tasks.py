"""Preparing a catalog entry: fill the shared Hugging Face cache, or check a local path.

The task runs on the cpu queue: a download takes minutes to hours, and a GPU worker
would run it only after the jobs queued before it, with its GPU idle meanwhile. Every
worker of a host mounts the same HF cache (HF_HOME), so one download serves the GPU
workers, the tokenizer of the CPU worker and the serving engine alike. Offline
(HF_HUB_OFFLINE=1, or the hub unreachable) a model already cached is found there;
one that is not ends `failed` with an error that says so, stored on the catalog row
for the admin to read.
"""

from __future__ import annotations

import logging

from app.catalog import repository
from app.catalog.sources import is_local, local_model_problem
from app.core.celery_app import TASK_DOWNLOAD_BASE_MODEL, celery_app
from app.core.config import get_settings
from app.core.worker_context import WorkerContext, run_in_context

logger = logging.getLogger(__name__)

# Weights in formats the trainer never loads (TensorFlow, Flax, ONNX, Meta's original checkpoints).
IGNORED_FILES = ["*.h5", "*.msgpack", "*.onnx", "*.tflite", "*.ot", "original/*", "onnx/*", "coreml/*"]
MAX_ERROR_CHARS = 2000


def fetch_into_cache(source: str, revision: str | None) -> str | None:
    """Download (or find cached) `source` at `revision` into the shared HF cache; the problem, or None."""
    # huggingface_hub comes with the train extra (the worker image): importing this module needs no more.
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    token = get_settings().hf_token
    wanted = f"'{source}' (revision '{revision or 'main'}')"
    try:
        folder = snapshot_download(
            repo_id=source, revision=revision, token=token.get_secret_value() if token else None,
            ignore_patterns=IGNORED_FILES,
        )  # fmt: skip
    except GatedRepoError:
        return f"{wanted} is gated: accept its terms on the hub and set HF_TOKEN to a token with access."
    except RepositoryNotFoundError:
        return f"{wanted} was not found on the hub; if it is private, set HF_TOKEN to a token that can read it."
    except RevisionNotFoundError:
        return f"{wanted}: the revision does not exist on the hub."
    except LocalEntryNotFoundError as error:
        return (f"The Hugging Face hub is unreachable (offline mode or no network) and {wanted} is not in the "
                f"shared cache. Copy the model into the cache, register a local path, or retry with network "
                f"access. Details: {error}")  # fmt: skip
    except (HfHubHTTPError, OSError) as error:
        return f"Downloading {wanted} failed: {type(error).__name__}: {error}"
    problem = local_model_problem(folder)
    return None if problem is None else f"{wanted} downloaded, but it is not a transformers model: {problem}"


async def _start(context: WorkerContext, model_id: str) -> tuple[str, str | None] | None:
    async with context.sessionmaker() as session:
        entry = await repository.get(session, model_id, for_update=True)
        if entry is None:
            return None
        entry.download_status, entry.download_error = "downloading", None
        await session.commit()
        return entry.source, entry.revision


async def _finish(context: WorkerContext, model_id: str, target: tuple[str, str | None], problem: str | None) -> str:
    status = "failed" if problem else "ready"
    async with context.sessionmaker() as session:
        entry = await repository.get(session, model_id, for_update=True)
        # An admin may have changed the source or revision meanwhile: that change brings its own download.
        if entry is None or (entry.source, entry.revision) != target:
            return "superseded"
        entry.download_status = status
        entry.download_error = problem[:MAX_ERROR_CHARS] if problem else None
        await session.commit()
    return status


@celery_app.task(name=TASK_DOWNLOAD_BASE_MODEL, acks_late=True)
def download_base_model(model_id: str) -> str:
    """Make a catalog entry loadable by the workers and the engine; the outcome is stored on the row."""
    target = run_in_context(lambda context: _start(context, model_id))
    if target is None:
        return "missing"
    source, revision = target
    problem = local_model_problem(source) if is_local(source) else fetch_into_cache(source, revision)
    if problem:
        logger.warning("base model %s not prepared: %s", model_id, problem)
    return run_in_context(lambda context: _finish(context, model_id, target, problem))
