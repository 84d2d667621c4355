"""scripts/gpu-check.sh runs here in its CPU form: every step it prints on a GPU, on this machine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# The script's job step starts its own stack; it must not find this session's servers in the environment.
STACK_VARIABLES = ("DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI", "CERBOS_URL", "QDRANT_URL", "VECTOR_SERVICE_URL")


@pytest.mark.slow
def test_the_gpu_check_script_runs_every_step_on_cpu() -> None:
    env = {name: value for name, value in os.environ.items() if name not in STACK_VARIABLES}
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "gpu-check.sh"), "--cpu"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "attention implementation the engine uses: sdpa" in out
    assert "engine / padded tokens/s:" in out and "engine-packed" in out and "trainer-padded" in out
    assert "QLoRA needs CUDA" in out
    assert "| out_of_memory |" in out
    assert "gpu-check: QLoRA job (4-bit NF4 base, LoRA r=16): failed" in out and "invalid_config" in out
    assert "gpu-check: full fine-tune: succeeded" in out and "float32" in out
