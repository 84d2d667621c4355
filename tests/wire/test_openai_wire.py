"""Every response of a full SDK flow, validated against OpenAI's own schemas (vendored in tests/wire).

One job trains for real (the tiny model, a dozen steps on the GPU worker) so that its events,
checkpoints, result file and models are the platform's own, not seeded; a second waits in the
queue behind it to be paused, resumed and cancelled; a third fails on a broken base model.
Empty lists and errors are part of the flow. Afterwards no response may hold a host path, a
secret, or the id of another user.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from app.catalog.tables import CatalogEntry
from tests.jobs.datasets import chat_lines, jsonl
from tests.wire.recording import Recorder, wire_violations

pytestmark = pytest.mark.slow

TERMINAL = {"succeeded", "failed", "cancelled"}
# Every schema the flow must have exercised, so the test cannot pass by checking less.
EXPECTED_SCHEMAS = {
    "OpenAIFile", "ListFilesResponse", "DeleteFileResponse", "FineTuningJob", "ListPaginatedFineTuningJobsResponse",
    "FineTuningJobEvent", "ListFineTuningJobEventsResponse", "ListFineTuningJobCheckpointsResponse", "Model",
    "ListModelsResponse", "DeleteModelResponse", "ErrorResponse",
}  # fmt: skip


def wait_job(client: OpenAI, job_id: str, done: Any, timeout: float = 420) -> Any:
    deadline = time.monotonic() + timeout
    job = client.fine_tuning.jobs.retrieve(job_id)
    while not done(job):
        assert time.monotonic() < deadline, f"job {job_id} still {job.status}"
        time.sleep(0.5)
        job = client.fine_tuning.jobs.retrieve(job_id)
    return job


def settled(job: Any) -> bool:
    """The state a request produced is the row's own: no worker is still carrying out a stop."""
    return not (job.progress or {}).get("stopping")


def expect_error(status: int, call: Any) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as raised:
        call()
    assert raised.value.status_code == status, raised.value
    return raised.value


@pytest.fixture
async def broken_model(sessionmaker, settings, tiny_model_path) -> str:  # type: ignore[no-untyped-def]
    """An allowed base model under the data directory whose weights are missing: its jobs fail at load,
    in an error that names the directory it looked in."""
    source = settings.data_dir.resolve() / "models" / "base" / "broken-llama"
    shutil.copytree(tiny_model_path, source, ignore=shutil.ignore_patterns("*.safetensors"), dirs_exist_ok=True)
    async with sessionmaker() as session:
        session.add(CatalogEntry(id="broken-llama", source=str(source), max_seq_length=256, allowed=True,
                                 download_status="ready"))  # fmt: skip
        await session.commit()
    return "broken-llama"


# A real training and two more jobs on one GPU worker: 17 minutes were seen with 7 suites on 2 cores.
@pytest.mark.timeout(1500)
async def test_every_response_of_the_sdk_flow_matches_openais_schemas(  # type: ignore[no-untyped-def]
    user_api, cpu_worker, gpu_worker, tiny_model, tiny_model_path, broken_model, make_user, settings
) -> None:
    user = await make_user("wire@acme.example.com")
    mate = await make_user("mate@acme.example.com")
    other = await make_user("other@globex.example.com", organization="globex")
    recorder = Recorder()
    client = recorder.sdk(user_api, user.key)
    http = recorder.http(user_api, user.key)

    # Empty lists.
    assert client.files.list().data == [] and client.fine_tuning.jobs.list().data == []
    assert {model.id for model in client.models.list()} == {tiny_model, broken_model}

    # Files.
    training = client.files.create(file=("train.jsonl", jsonl(chat_lines(12))), purpose="fine-tune")
    validation = client.files.create(file=("valid.jsonl", jsonl(chat_lines(4, offset=60))), purpose="fine-tune")
    too_small = client.files.create(file=("small.jsonl", jsonl(chat_lines(3))), purpose="fine-tune")
    assert client.files.retrieve(training.id).status == "processed"
    assert [file.id for file in client.files.list(limit=2)] == [too_small.id, validation.id, training.id]
    assert client.files.content(training.id).content == jsonl(chat_lines(12))

    # Errors, as OpenAI answers them.
    expect_error(404, lambda: client.files.retrieve("file-000000000000nothere"))
    small = expect_error(400, lambda: client.fine_tuning.jobs.create(model=tiny_model, training_file=too_small.id))
    assert small.code == "invalid_n_examples" and small.param == "training_file"
    for field, value in (("n_epochs", 51), ("batch_size", 257), ("learning_rate_multiplier", 0)):
        method = {"type": "supervised", "supervised": {"hyperparameters": {field: value}}}
        refused = expect_error(400, lambda m=method: client.fine_tuning.jobs.create(  # type: ignore[misc]
            model=tiny_model, training_file=training.id, method=m))  # fmt: skip
        assert refused.param == f"method.supervised.hyperparameters.{field}"
    empty_suffix = expect_error(400, lambda: client.fine_tuning.jobs.create(
        model=tiny_model, training_file=training.id, suffix=""))  # fmt: skip
    assert empty_suffix.param == "suffix"
    expect_error(404, lambda: client.fine_tuning.jobs.create(model="no-such-model", training_file=training.id))
    expect_error(401, lambda: recorder.sdk(user_api, "sk-ft-not-a-real-key").files.list())
    hello = [{"role": "user", "content": "hi"}]
    unserved = expect_error(404, lambda: client.chat.completions.create(model=tiny_model, messages=hello))
    assert unserved.code == "model_not_served"  # this harness starts no engine (tests/inference does)
    assert http.get("/v1/files/").status_code == 404  # a trailing slash: no redirect
    assert http.get("/v1/fine_tuning/jobs/").status_code == 404

    # A job that trains, with every hyperparameter in one `method` (the SDK merges extra_body shallowly).
    hyperparameters = {"n_epochs": 2, "batch_size": 2, "learning_rate_multiplier": 2.0, "lora_r": 4, "packing": False}
    job = client.fine_tuning.jobs.create(
        model=tiny_model, training_file=training.id, validation_file=validation.id, suffix="wire", seed=3,
        extra_body={"method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}},
    )  # fmt: skip
    assert job.status == "validating_files" and job.trained_tokens is None
    colleague = recorder.sdk(user_api, mate.key)
    assert colleague.fine_tuning.jobs.retrieve(job.id).id == job.id
    denied = expect_error(403, lambda: colleague.fine_tuning.jobs.cancel(job.id))
    assert denied.type == "permission_error" and denied.param == "fine_tuning_job_id"
    expect_error(404, lambda: recorder.sdk(user_api, other.key).fine_tuning.jobs.cancel(job.id))

    running = wait_job(client, job.id, lambda j: j.status in {"running"} | TERMINAL)
    assert running.status == "running" and running.trained_tokens is None  # OpenAI: null until done
    # Queued behind it on the one GPU worker: paused, resumed and cancelled, each answered with its result.
    waiting = client.fine_tuning.jobs.create(model=tiny_model, training_file=training.id,
                                             metadata={"role": "the one that waits"})  # fmt: skip
    waiting = wait_job(client, waiting.id, lambda j: j.status in {"queued", "running"} | TERMINAL)
    assert client.fine_tuning.jobs.pause(waiting.id).status == "paused"
    waiting = wait_job(client, waiting.id, settled)
    assert client.fine_tuning.jobs.resume(waiting.id).status == "queued"
    cancelled = client.fine_tuning.jobs.cancel(waiting.id)
    assert cancelled.status == "cancelled"
    wait_job(client, waiting.id, settled)

    stream = http.get(f"/v1/fine_tuning/jobs/{job.id}/events", params={"stream": "true"})
    assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
    finished = client.fine_tuning.jobs.retrieve(job.id)
    assert finished.status == "succeeded", finished.error
    assert isinstance(finished.trained_tokens, int) and finished.trained_tokens > 0
    assert finished.estimated_finish is None
    assert (finished.hyperparameters.n_epochs, finished.hyperparameters.batch_size) == (2, 2)
    assert finished.hyperparameters.learning_rate_multiplier == 2.0  # resolved like n_epochs and batch_size
    assert finished.method.supervised.hyperparameters.n_epochs == 2
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=7))
    assert events and all(isinstance(event.data, dict) for event in events)
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id, limit=1))
    assert checkpoints and client.fine_tuning.jobs.checkpoints.list(waiting.id).data == []

    # Models: the fine-tuned model and its checkpoints as models of their own (ft:…:ckpt-step-N).
    listed = [model.id for model in client.models.list()]
    checkpoint_models = [checkpoint.fine_tuned_model_checkpoint for checkpoint in checkpoints]
    assert finished.fine_tuned_model in listed and set(checkpoint_models) <= set(listed)
    assert client.models.retrieve(finished.fine_tuned_model).id == finished.fine_tuned_model
    assert client.models.retrieve(checkpoint_models[0]).id == checkpoint_models[0]
    expect_error(403, lambda: colleague.models.delete(checkpoint_models[0]))
    assert client.models.delete(checkpoint_models[0]).deleted is True
    expect_error(404, lambda: client.models.retrieve(checkpoint_models[0]))
    download = http.get(f"/v1/fine_tuning/jobs/{job.id}/checkpoints/{checkpoints[0].id}/download")
    assert download.status_code == 404  # deleted with its model
    deleted = client.models.delete(finished.fine_tuned_model)
    assert deleted.deleted is True
    assert set(deleted.model_extra["checkpoint_models_kept"]) == set(checkpoint_models[1:])
    expect_error(404, lambda: client.models.retrieve(finished.fine_tuned_model))

    # A job that fails: its error and events name the model, not the host path it was looked for at.
    broken = client.fine_tuning.jobs.create(model=broken_model, training_file=training.id)
    failed = wait_job(client, broken.id, lambda j: j.status in TERMINAL)
    assert failed.status == "failed" and failed.error is not None and "broken-llama" in failed.error.message
    list(client.fine_tuning.jobs.list_events(broken.id))
    assert client.files.delete(validation.id).deleted is True
    list(client.fine_tuning.jobs.list())

    problems, checked = wire_violations(recorder.exchanges)
    assert problems == [], "\n".join(problems)
    assert set(checked) == EXPECTED_SCHEMAS, checked
    assert checked["FineTuningJobEvent"] >= 10  # the SSE stream of a real training

    # Nothing a user can read names a host path, a secret or another user.
    forbidden = {
        "the data directory": str(settings.data_dir.resolve()),
        "the tiny model's path": str(Path(tiny_model_path).resolve()),
        "the API key pepper": settings.api_key_pepper.get_secret_value(),
        "a colleague's user id": mate.id,
        "another tenant's user id": other.id,
        "another tenant's key": other.key,
        "the caller's own user id": user.id,
    }
    for exchange in recorder.exchanges:
        text = exchange.body.decode("utf-8", "replace")
        for what, value in forbidden.items():
            assert value not in text, f"{what} in {exchange.method} {exchange.path}: {text[:300]}"
