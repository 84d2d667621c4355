"""A real job end to end on CPU: upload -> validate -> queue -> train on the GPU worker -> results."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.jobs.datasets import chat_lines, jsonl

TERMINAL = {"succeeded", "failed", "cancelled"}


def wait_for(client: OpenAI, job_id: str, statuses: set[str], timeout: float = 420) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in statuses:
            return job
        time.sleep(1)
    raise AssertionError(f"job {job_id} still {job.status} after {timeout}s")


@pytest.mark.slow
async def test_supervised_lora_job_end_to_end(
    user_api, cpu_worker, gpu_worker, tiny_model, make_user, sessionmaker, mlflow, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("trainer@example.com")
    client = OpenAI(base_url=f"{user_api}/v1", api_key=user.key, max_retries=0)
    training = client.files.create(file=("train.jsonl", jsonl(chat_lines(32))), purpose="fine-tune")
    validation = client.files.create(file=("valid.jsonl", jsonl(chat_lines(8, offset=100))), purpose="fine-tune")
    assert client.files.wait_for_processing(training.id).status == "processed"

    job = client.fine_tuning.jobs.create(
        model=tiny_model,
        training_file=training.id,
        validation_file=validation.id,
        suffix="colors",
        seed=7,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3, "batch_size": 4}}},
        extra_body={
            "method": {
                "type": "supervised",
                "supervised": {
                    "hyperparameters": {
                        "n_epochs": 3,
                        "batch_size": 4,
                        "lora_r": 8,
                        "learning_rate": 0.003,
                        "eval_steps": 4,
                    }
                },
            }
        },
    )
    assert job.status == "validating_files"
    finished = wait_for(client, job.id, TERMINAL)
    assert finished.status == "succeeded", finished.error
    assert finished.error is None
    assert finished.fine_tuned_model.startswith(f"ft:{tiny_model}:acme:colors:")
    assert finished.trained_tokens and finished.trained_tokens > 0

    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    messages = [event.message for event in events]
    assert "The job has successfully completed" in messages
    losses = [event.data["train_loss"] for event in reversed(events) if event.data and "train_loss" in event.data]
    assert len(losses) >= 5
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses

    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert checkpoints and all(c.fine_tuning_job_id == job.id for c in checkpoints)

    assert len(finished.result_files) == 1
    content = client.files.content(finished.result_files[0]).text
    rows = list(csv.DictReader(io.StringIO(content)))
    assert rows and {"step", "train_loss"} <= set(rows[0])

    model_ids = [model.id for model in client.models.list()]
    assert finished.fine_tuned_model in model_ids and tiny_model in model_ids

    run = await assert_registered_once(mlflow, sessionmaker, job.id, "adapter")
    assert run.data.metrics["train_loss"] > 0

    # The merged weights download and generate.
    listing = httpx.get(
        f"{user_api}/v1/models/{finished.fine_tuned_model}/files", params={"kind": "merged"}, headers=user.headers
    ).json()
    assert any(entry["path"].endswith(".safetensors") for entry in listing["data"])
    info = client.models.retrieve(finished.fine_tuned_model)
    assert info.id == finished.fine_tuned_model
    assert_merged_model_generates(user_api, user.headers, finished.fine_tuned_model, tmp_path)


def assert_merged_model_generates(user_api: str, headers: dict[str, str], model: str, directory) -> None:  # type: ignore[no-untyped-def]
    """Download the merged weights as a tar stream and generate with them."""
    import tarfile

    from transformers import AutoModelForCausalLM, AutoTokenizer

    archive = directory / "merged.tar"
    with httpx.stream(
        "GET", f"{user_api}/v1/models/{model}/download", params={"kind": "merged"}, headers=headers, timeout=60
    ) as response:
        assert response.status_code == 200
        with archive.open("wb") as sink:
            for chunk in response.iter_bytes():
                sink.write(chunk)
    with tarfile.open(archive) as tar:
        tar.extractall(directory, filter="data")
    root = next(path.parent for path in directory.rglob("config.json"))
    tokenizer = AutoTokenizer.from_pretrained(root)
    loaded = AutoModelForCausalLM.from_pretrained(root)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What color is the cat number 1?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    output = loaded.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert output.shape[1] > prompt["input_ids"].shape[1]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dpo", "full"])
async def test_dpo_and_full_fine_tune_end_to_end(
    kind, user_api, cpu_worker, gpu_worker, tiny_model, make_user, sessionmaker, mlflow
) -> None:  # type: ignore[no-untyped-def]
    from tests.jobs.datasets import preference_lines

    user = await make_user(f"{kind}@example.com")
    client = OpenAI(base_url=f"{user_api}/v1", api_key=user.key, max_retries=0)
    lines = preference_lines(16) if kind == "dpo" else chat_lines(16)
    training = client.files.create(file=("train.jsonl", jsonl(lines)), purpose="fine-tune")
    if kind == "dpo":
        method = {"type": "dpo", "dpo": {"hyperparameters": {"n_epochs": 1, "batch_size": 4, "beta": 0.1}}}
    else:
        method = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1, "fine_tune_type": "full"}}}
    job = client.fine_tuning.jobs.create(model=tiny_model, training_file=training.id, extra_body={"method": method})
    finished = wait_for(client, job.id, TERMINAL)
    assert finished.status == "succeeded", finished.error
    assert finished.method.type == kind.replace("full", "supervised")

    from sqlalchemy import select

    from app.finetuned.tables import FineTunedModel

    async with sessionmaker() as session:
        row = await session.scalar(select(FineTunedModel).where(FineTunedModel.job_id == job.id))
    assert row is not None and row.adapter_path
    if kind == "full":
        assert row.adapter_path.endswith("/model") and row.merged_path is None
    else:
        assert row.adapter_path.endswith("/adapter")
    run = await assert_registered_once(mlflow, sessionmaker, job.id, "model" if kind == "full" else "adapter")
    assert run.data.params["method"] == ("dpo" if kind == "dpo" else "supervised")


async def assert_registered_once(mlflow: Any, sessionmaker: Any, job_id: str, weights: str) -> Any:
    """The job's MLflow run holds its weights and has exactly one registry version, the one its model row names."""
    from sqlalchemy import select

    from app.finetuned.tables import FineTunedModel
    from app.jobs.tables import Job

    async with sessionmaker() as session:
        job = await session.get(Job, job_id)
        row = await session.scalar(select(FineTunedModel).where(FineTunedModel.job_id == job_id))
    assert job is not None and job.mlflow_run_id and row is not None
    versions = mlflow.search_model_versions(f"run_id = '{job.mlflow_run_id}'")
    assert [(v.name, int(v.version)) for v in versions] == [(row.registry_name, row.registry_version)], versions
    [version] = versions
    assert version.tags["job_id"] == job_id and version.tags["fine_tuned_model"] == row.id
    assert version.source.endswith(f"/{weights}"), version.source
    run = mlflow.get_run(job.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert weights in {artifact.path for artifact in mlflow.list_artifacts(job.mlflow_run_id)}
    return run
