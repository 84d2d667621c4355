"""A real job end to end on CPU: upload -> validate -> queue -> train on the GPU worker -> results."""

from __future__ import annotations

import csv
import io
import time

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
    user_api, cpu_worker, gpu_worker, tiny_model, make_user, settings
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

    from mlflow.tracking import MlflowClient

    mlflow = MlflowClient(settings.mlflow_tracking_uri)
    versions = mlflow.search_model_versions(f"tags.job_id = '{job.id}'")
    assert len(versions) == 1 and versions[0].tags["base_model"] == tiny_model
    run = mlflow.get_run(versions[0].run_id)
    assert run.data.metrics["train_loss"] > 0

    # The merged weights download and generate.
    listing = httpx.get(
        f"{user_api}/v1/models/{finished.fine_tuned_model}/files", params={"kind": "merged"}, headers=user.headers
    ).json()
    assert any(entry["path"].endswith(".safetensors") for entry in listing["data"])
    info = client.models.retrieve(finished.fine_tuned_model)
    assert info.id == finished.fine_tuned_model
