"""scripts/gpu-check.sh runs here in its CPU form: steps 1-4 as it prints them on a GPU, on this machine.
Its step 5, jobs through the real platform, is tests/jobs/test_device_jobs.py, which the suite runs itself
(the script would start a second stack for it)."""

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
        [str(REPO_ROOT / "scripts" / "gpu-check.sh"), "--cpu", "--no-jobs"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "attention implementation the engine uses: sdpa" in out
    assert "engine / padded tokens/s:" in out and "engine-packed" in out and "trainer-padded" in out
    assert "QLoRA needs CUDA" in out
    assert "| out_of_memory |" in out
    assert "== 5. jobs through the real worker and stack\nnot run here (--no-jobs)" in out
