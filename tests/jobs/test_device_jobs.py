"""The GPU figures of scripts/gpu-check.sh that need the real worker: a QLoRA job and a bf16 full fine-tune.

Run by the script (GPU_CHECK=1), on a GPU or, in its --cpu form, on this machine, where QLoRA must be
refused as `invalid_config` and the full fine-tune trains in fp32. Each test prints `gpu-check:` lines.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from sqlalchemy import select

from app.jobs.tables import JobEvent
from tests.jobs.datasets import chat_lines, jsonl
from tests.jobs.helpers import TERMINAL, wait_status

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_model_path(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bench's ~13M Llama (hidden 512, 4 layers, head_dim 64) with the tiny tokenizer, saved like a real model."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from bench.train_throughput import SHAPES

    target = tmp_path_factory.mktemp("models") / "small-llama"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    config = LlamaConfig(**({"vocab_size": len(tokenizer)} | SHAPES["llama-13m"]), tie_word_embeddings=False,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


@pytest.fixture
async def small_model(sessionmaker: Any, small_model_path: Path) -> str:
    from app.catalog.tables import CatalogEntry

    async with sessionmaker() as session:
        session.add(CatalogEntry(id="small-llama", source=str(small_model_path), max_seq_length=512,
                                 parameter_count=None, allowed=True, download_status="ready"))  # fmt: skip
        await session.commit()
    return "small-llama"


@pytest.fixture
async def client(user_api: str, make_user: Any) -> OpenAI:
    user = await make_user("gpu-check@example.com")
    return OpenAI(base_url=f"{user_api}/v1", api_key=user.key, max_retries=0)


def run_job(client: OpenAI, model: str, **hyperparameters: Any) -> tuple[Any, float]:
    training = client.files.create(file=("train.jsonl", jsonl(chat_lines(64))), purpose="fine-tune")
    hyperparameters = {"n_epochs": 1, "batch_size": 4, "max_seq_length": 512, **hyperparameters}
    started = time.monotonic()
    job = client.fine_tuning.jobs.create(
        model=model,
        training_file=training.id,
        extra_body={"method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}},
    )
    return wait_status(client, job.id, TERMINAL, timeout=600), time.monotonic() - started


async def said(sessionmaker: Any, job_id: str) -> list[JobEvent]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)))


def report(name: str, job: Any, seconds: float, events: list[JobEvent]) -> None:
    loaded = next((event.message for event in events if event.message.startswith("loaded ")), "not loaded")
    steps = [event.data for event in events if event.data and "train_loss" in event.data]
    rate = steps[-1].get("tokens_per_second") if steps else None
    error = f" error {job.error.code}: {job.error.message[:160]}" if job.error else ""
    print(f"\ngpu-check: {name}: {job.status} in {seconds:.0f} s, {len(steps)} steps, {rate} tokens/s; {loaded}{error}")


async def test_qlora_job_through_the_worker(client: OpenAI, gpu_worker: Any, cpu_worker: Any, small_model: str,
                                            sessionmaker: Any) -> None:  # fmt: skip
    import torch

    job, seconds = run_job(client, small_model, quantization="qlora")
    report("QLoRA job (4-bit NF4 base, LoRA r=16)", job, seconds, await said(sessionmaker, job.id))
    if torch.cuda.is_available():
        assert job.status == "succeeded", job.error
    else:
        assert job.status == "failed" and job.error.code == "invalid_config" and "CUDA" in job.error.message


async def test_full_fine_tune_through_the_worker(client: OpenAI, gpu_worker: Any, cpu_worker: Any, small_model: str,
                                                 sessionmaker: Any) -> None:  # fmt: skip
    import torch

    job, seconds = run_job(client, small_model, fine_tune_type="full")
    events = await said(sessionmaker, job.id)
    report("full fine-tune", job, seconds, events)
    assert job.status == "succeeded", job.error
    loaded = next(event.message for event in events if event.message.startswith("loaded "))
    dtype = "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float32"
    assert f" in {dtype}," in loaded, loaded
