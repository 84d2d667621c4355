"""What can be served, for the model lists: the user API's /v1/models and the admin catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core.config import Settings

ADAPTER_CONFIG = "adapter_config.json"


def base_served(settings: Settings, base_model: str) -> bool:
    return base_model in settings.inference_engines


def fine_tuned_served(settings: Settings, model: str, base_model: str, adapter_path: str | None) -> bool:
    """Served by an engine of its own, or as a LoRA adapter on its base model's engine."""
    if model in settings.inference_engines:
        return True
    is_adapter = bool(adapter_path) and (Path(str(adapter_path)) / ADAPTER_CONFIG).is_file()
    return is_adapter and base_served(settings, base_model)


def serving_of(settings: Settings, base_model: str) -> dict[str, Any]:
    """How a base model and its fine-tuned models are served (the admin catalog shows it)."""
    url = settings.inference_engines.get(base_model)
    if url is None:
        return {"served": False, "engine": None, "url": None, "lora_adapters": None, "full_fine_tunes": None}
    return {
        "served": True,
        "engine": "vllm",
        "url": url,
        # Loaded by the platform on a model's first request; the least recently used is unloaded for a new one.
        "lora_adapters": {"max_loaded": settings.inference_max_loras, "loaded": "on first use"},
        "full_fine_tunes": "served only by an engine of their own (INFERENCE_ENGINES keyed by the ft: name)",
    }
