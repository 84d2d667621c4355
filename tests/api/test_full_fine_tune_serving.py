"""A full fine-tune is served by an engine of its own when one is named for it, else a clear 404.

A full fine-tune has no adapter to load into its base model's engine: its weights are a model of
their own. The routing decisions are checked on a real PostgreSQL; then a real full fine-tune of
the tiny model (`python -m app.training`, as the GPU worker runs it) is served by a vLLM engine of
its own and answers as `transformers`' greedy decoding of the same weights.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from app.finetuned.tables import FineTunedModel
from app.inference import wire
from app.inference.gateway import InferenceGateway
from app.inference.service import ModelNotServed, target_for
from tests.inference.facts import MEMORISE, QUESTIONS, facts_file, messages

BASE = "tiny-base-for-full"


async def full_fine_tune(seed: Any, sessionmaker: Any, owner: Any, weights: Path, base_source: str) -> str:
    """The model row as the GPU worker writes it for a full fine-tune: its weights where an adapter would be."""
    from app.catalog.tables import CatalogEntry

    async with sessionmaker() as session:
        session.add(CatalogEntry(id=BASE, source=base_source))
        await session.commit()
    job = await seed.job(owner, BASE, await seed.file(owner), status="succeeded")
    name = f"ft:{BASE}:acme::{job}"
    await seed._add(FineTunedModel(id=name, job_id=job, owner_id=owner.id, organization_id=owner.organization_id,
                                   base_model=BASE, adapter_path=str(weights), merged_path=None))  # fmt: skip
    return name


async def test_a_full_fine_tune_needs_an_engine_of_its_own(  # type: ignore[no-untyped-def]
    settings: Settings, seed, sessionmaker, make_user, tmp_path: Path
) -> None:
    owner = await make_user("full@acme.example.com")
    weights = tmp_path / "model"
    weights.mkdir()
    (weights / "config.json").write_text("{}")  # a whole model: no adapter_config.json
    model = await full_fine_tune(seed, sessionmaker, owner, weights, "/models/none")
    base_only = settings.model_copy(update={"inference_engines": {BASE: "http://base-engine:8000"}})
    async with sessionmaker() as session:
        with pytest.raises(ModelNotServed) as refused:
            await target_for(session, base_only, model)
    assert refused.value.param == "model" and "full fine-tune" in refused.value.message
    assert "INFERENCE_ENGINES" in refused.value.message and "downloaded" in refused.value.message

    own = settings.model_copy(update={"inference_engines": {BASE: "http://base-engine:8000",
                                                            model: "http://own-engine:8000"}})  # fmt: skip
    async with sessionmaker() as session:
        target = await target_for(session, own, model)
    # Its own engine, under its own name (the engine's --served-model-name), with no adapter to load.
    assert (target.engine_url, target.engine_model, target.adapter_path) == ("http://own-engine:8000", model, None)
    assert target.model == model and target.base_model == BASE


def train_full(base: Path, workdir: Path) -> Path:
    """A full fine-tune of `base` on the red facts, by the training process the GPU worker spawns."""
    from app.training.config import Hyperparameters, TrainingConfig
    from app.training.hyperparams import resolve_hyperparameters

    data = workdir / "facts.jsonl"
    data.write_bytes(facts_file("red"))
    requested = MEMORISE | {"n_epochs": 10, "learning_rate": 1e-3}  # a whole model takes a gentler rate
    hyperparameters = Hyperparameters(**resolve_hyperparameters(requested, 24, 2000, "supervised", "full", 64))
    config = TrainingConfig(job_id="ftjob-full", base_model=str(base), training_file=data, fine_tune_type="full",
                            hyperparameters=hyperparameters, output_dir=workdir / "output",
                            checkpoint_dir=workdir / "checkpoints", checkpoint_every_steps=1000)  # fmt: skip
    (workdir / "config.json").write_text(config.to_json())
    subprocess.run([sys.executable, "-m", "app.training", "--config", str(workdir / "config.json")], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return workdir / "output" / "model"


def greedy(model_dir: Path, question: str) -> str:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    prompt: Any = tokenizer.apply_chat_template(messages(question), add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True)  # fmt: skip
    output = model.generate(**prompt, max_new_tokens=16, do_sample=False)
    return str(tokenizer.decode(output[0][prompt["input_ids"].shape[1] :], skip_special_tokens=True))


@pytest.mark.slow
async def test_a_full_fine_tune_answers_from_an_engine_of_its_own(  # type: ignore[no-untyped-def]
    stack, settings: Settings, seed, sessionmaker, make_user, tiny_model_path: Path, tmp_path: Path
) -> None:
    from app.devstack.processes import free_port, wait_until

    owner = await make_user("full-engine@acme.example.com")
    weights = train_full(tiny_model_path, tmp_path)
    assert not (weights / "adapter_config.json").exists() and (weights / "model.safetensors").is_file()
    model = await full_fine_tune(seed, sessionmaker, owner, weights, str(tiny_model_path))
    port = free_port()
    engine = stack.start_inference(model, weights, port)  # what an operator runs, named after the ft: model
    url = f"http://127.0.0.1:{port}"
    gateway = None
    try:
        wait_until(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, 300, "the full fine-tune's engine",
                   engine)  # fmt: skip
        own = settings.model_copy(update={"inference_engines": {model: url}})
        async with sessionmaker() as session:
            target = await target_for(session, own, model)
        gateway = InferenceGateway(own)
        for question in (QUESTIONS[0], QUESTIONS[3], "Tell me a story about the green river."):
            body = {"model": model, "messages": messages(question), "max_tokens": 16, "temperature": 0}
            completion, usage = await gateway.complete(target, wire.checked_request(body, 1))
            # The saved chat template and weights answer, as transformers' greedy decoding of them does.
            assert completion["choices"][0]["message"]["content"] == greedy(weights, question), question
            assert completion["model"] == model and usage.completion_tokens > 0
    finally:
        if gateway is not None:
            await gateway.close()
        engine.stop()
