"""The official `openai` SDK against the running user API: the whole job flow, and every error it maps.

No job trains here: with the CPU worker alone a job is validated and then waits
in `queued`, which is all that listing, events, checkpoints and cancel need.
"""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest
from openai import OpenAI
from sqlalchemy import func, select, update

from app.core.database import utcnow
from app.files.tables import File
from app.users.tables import ApiKey, Quota, User
from tests.api.conftest import STRICT_UPLOAD_BYTES, listing, sdk
from tests.jobs.datasets import chat_lines, jsonl


def wait_for_status(client: OpenAI, job_id: str, statuses: set[str], timeout: float = 300) -> object:
    deadline = time.monotonic() + timeout
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in statuses or time.monotonic() > deadline:
            return job
        time.sleep(0.5)


async def test_sdk_drives_upload_create_list_events_checkpoints_cancel(  # type: ignore[no-untyped-def]
    user_api, cpu_worker, tiny_model, make_user, seed
) -> None:
    user = await make_user("flow@acme.example.com")
    client = sdk(user_api, user.key)
    training_bytes = jsonl(chat_lines(16))
    training = client.files.create(file=("train.jsonl", training_bytes), purpose="fine-tune")
    validation = client.files.create(file=("valid.jsonl", jsonl(chat_lines(4, offset=50))), purpose="fine-tune")
    for uploaded in (training, validation):
        done = client.files.wait_for_processing(uploaded.id, poll_interval=0.2, max_wait_seconds=30)
        assert done.status == "processed" and done.purpose == "fine-tune"
    assert training.id.startswith("file-") and training.bytes == len(training_bytes)
    assert training.filename == "train.jsonl"
    assert client.files.content(training.id).content == training_bytes
    assert [f.id for f in client.files.list(limit=1)] == [validation.id, training.id]  # two pages of one

    two_epochs = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}
    jobs = [
        client.fine_tuning.jobs.create(
            model=tiny_model,
            training_file=training.id,
            validation_file=validation.id,
            suffix=f"run{index}",
            seed=index,
            metadata={"run": str(index)},
            method=two_epochs,  # type: ignore[arg-type]
        )
        for index in range(3)
    ]
    for job in jobs:
        assert job.id.startswith("ftjob-") and job.status == "validating_files"
        assert job.result_files == [] and job.error is None and job.fine_tuned_model is None
    first = jobs[0]
    assert first.training_file == training.id and first.validation_file == validation.id
    assert first.user_provided_suffix == "run0" and first.metadata == {"run": "0"} and first.seed == 0
    assert first.method.type == "supervised" and first.method.supervised.hyperparameters.n_epochs == 2

    # Auto-pagination: three jobs in pages of two, newest first, each exactly once.
    page = client.fine_tuning.jobs.list(limit=2)
    assert len(page.data) == 2 and page.has_more
    assert [job.id for job in page] == [job.id for job in reversed(jobs)]

    queued = wait_for_status(client, first.id, {"queued", "failed"})
    assert queued.status == "queued", queued.error
    assert queued.hyperparameters.n_epochs == 2
    assert isinstance(queued.hyperparameters.batch_size, int)  # resolved from "auto" by the validation phase
    assert queued.estimated_finish is not None
    # A page answers with `job_view` dicts, a retrieve with the validated model: the same object, key for key.
    listed = client.fine_tuning.jobs.with_raw_response.list(limit=100).http_response.json()["data"]
    retrieved = client.fine_tuning.jobs.with_raw_response.retrieve(first.id).http_response.json()
    assert [list(item.items()) for item in listed if item["id"] == first.id] == [list(retrieved.items())]

    events = list(client.fine_tuning.jobs.list_events(first.id, limit=1))  # one event per page
    messages = [event.message for event in events]
    # Events written in one transaction may share a millisecond, so only the phases' order is asserted.
    assert set(messages[-2:]) == {f"Validating training file: {training.id}",
                                  f"Validating validation file: {validation.id}"}  # fmt: skip
    assert "Job queued for a GPU worker" in messages[:3]
    assert any(message.startswith("Files validated: 16 training examples") for message in messages[:3])
    assert len({event.id for event in events}) == len(events)
    assert all(event.object == "fine_tuning.job.event" for event in events)

    steps = (4, 8, 12)
    checkpoint_ids = [await seed.checkpoint(first.id, step) for step in steps]
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(first.id, limit=2))
    assert [c.id for c in checkpoints] == list(reversed(checkpoint_ids))
    assert [c.step_number for c in checkpoints] == list(reversed(steps))
    assert all(c.fine_tuning_job_id == first.id and c.id.startswith("ftckpt_") for c in checkpoints)
    # The job is not finished: its checkpoints carry the name its model will have (organization name, not id).
    assert checkpoints[0].fine_tuned_model_checkpoint == f"ft:{tiny_model}:acme:run0:{first.id[-8:]}:ckpt-step-12"
    assert checkpoints[0].metrics.step == 12

    cancelled = client.fine_tuning.jobs.cancel(first.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert client.fine_tuning.jobs.retrieve(first.id).status == "cancelled"
    assert client.fine_tuning.jobs.list_events(first.id, limit=1).data[0].message == "Job cancelled"
    others = {job.id: job.status for job in client.fine_tuning.jobs.list()}
    assert others[jobs[1].id] != "cancelled" and others[jobs[2].id] != "cancelled"


async def test_sdk_error_classes(user_api, tiny_model, make_user, seed, sessionmaker) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("errors@acme.example.com")
    client = sdk(user_api, user.key)
    training = await seed.file(user)

    with pytest.raises(openai.AuthenticationError) as unauthorized:
        sdk(user_api, "sk-ft-not-a-real-key").fine_tuning.jobs.list()
    assert unauthorized.value.status_code == 401 and unauthorized.value.code == "invalid_api_key"

    with pytest.raises(openai.NotFoundError) as missing:
        client.fine_tuning.jobs.retrieve("ftjob-000000000000nothere")
    assert missing.value.code == "not_found" and missing.value.param == "fine_tuning_job_id"
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve("file-000000000000nothere")
    with pytest.raises(openai.NotFoundError) as no_file:
        client.fine_tuning.jobs.create(model=tiny_model, training_file="file-000000000000nothere")
    assert no_file.value.param == "training_file"

    with pytest.raises(openai.BadRequestError) as bad_purpose:
        client.files.create(file=("a.jsonl", jsonl(chat_lines(2))), purpose="assistants")
    assert bad_purpose.value.code == "unsupported_purpose" and bad_purpose.value.param == "purpose"
    with pytest.raises(openai.BadRequestError) as bad_epochs:
        zero_epochs = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 0}}}
        client.fine_tuning.jobs.create(model=tiny_model, training_file=training, method=zero_epochs)  # type: ignore[arg-type]
    assert bad_epochs.value.param == "method.supervised.hyperparameters.n_epochs"
    with pytest.raises(openai.BadRequestError) as unknown_field:
        client.fine_tuning.jobs.create(model=tiny_model, training_file=training, extra_body={"colour": "red"})
    assert unknown_field.value.param == "colour"

    job = client.fine_tuning.jobs.create(model=tiny_model, training_file=training)
    with pytest.raises(openai.ConflictError) as not_paused:
        client.fine_tuning.jobs.resume(job.id)
    assert not_paused.value.code == "invalid_state"
    client.fine_tuning.jobs.cancel(job.id)
    with pytest.raises(openai.ConflictError):
        client.fine_tuning.jobs.cancel(job.id)
    with pytest.raises(openai.ConflictError):
        client.fine_tuning.jobs.pause(job.id)

    async with sessionmaker() as session:
        session.add(Quota(user_id=user.id, max_concurrent_jobs=1))
        await session.commit()
    client.fine_tuning.jobs.create(model=tiny_model, training_file=training)  # the one allowed
    with pytest.raises(openai.RateLimitError) as over_quota:
        client.fine_tuning.jobs.create(model=tiny_model, training_file=training)
    assert over_quota.value.status_code == 429 and over_quota.value.code == "max_concurrent_jobs"
    assert over_quota.value.type == "insufficient_quota"

    # With the SDK's default retries, neither a state conflict nor a spent quota is sent again.
    sent: list[httpx.Request] = []
    patient = OpenAI(base_url=f"{user_api}/v1", api_key=user.key, max_retries=2,
                     http_client=httpx.Client(event_hooks={"request": [sent.append]}))  # fmt: skip
    with pytest.raises(openai.ConflictError):
        patient.fine_tuning.jobs.cancel(job.id)
    with pytest.raises(openai.RateLimitError):
        patient.fine_tuning.jobs.create(model=tiny_model, training_file=training)
    assert len(sent) == 2


async def test_sdk_models_list_retrieve_delete(user_api, tiny_model, make_user, seed) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("models@acme.example.com")
    client = sdk(user_api, user.key)
    job = await seed.job(user, tiny_model, await seed.file(user), status="succeeded")
    tuned = await seed.model(user, job, tiny_model)
    listed = {model.id: model for model in client.models.list()}
    assert set(listed) == {tiny_model, tuned}
    assert listed[tuned].owned_by == user.organization_id and listed[tiny_model].object == "model"
    assert client.models.retrieve(tuned).id == tuned
    assert client.models.retrieve(tiny_model).owned_by == "system"
    deleted = client.models.delete(tuned)
    assert deleted.deleted is True and deleted.id == tuned
    assert {model.id for model in client.models.list()} == {tiny_model}
    with pytest.raises(openai.NotFoundError) as gone:
        client.models.retrieve(tuned)
    assert gone.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.models.delete(tiny_model)  # base models are the catalog's, not the caller's


async def test_sdk_upload_over_the_limit_is_413_and_stores_nothing(  # type: ignore[no-untyped-def]
    strict_api, make_user, settings, sessionmaker
) -> None:
    user = await make_user("big@acme.example.com")
    client = sdk(strict_api, user.key)
    example = {"messages": [{"role": "user", "content": "x" * 6000}, {"role": "assistant", "content": "y"}]}
    line = (json.dumps(example) + "\n").encode()
    oversize = line * (STRICT_UPLOAD_BYTES // len(line) + 64)
    before = listing(settings.datasets_path)
    with pytest.raises(openai.APIStatusError) as too_large:
        client.files.create(file=("big.jsonl", oversize), purpose="fine-tune")
    assert type(too_large.value) is openai.APIStatusError  # no narrower class: the SDK has none for 413
    assert too_large.value.status_code == 413 and too_large.value.code == "file_too_large"
    assert listing(settings.datasets_path) == before
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(File)) == 0
    # Just under the limit is accepted by the same process.
    fits = line * (STRICT_UPLOAD_BYTES // len(line) - 8)
    assert client.files.create(file=("fits.jsonl", fits), purpose="fine-tune").bytes == len(fits)


async def test_sdk_authentication_errors(user_api, make_user, sessionmaker) -> None:  # type: ignore[no-untyped-def]
    revoked, expired, disabled = [await make_user(f"{name}@acme.example.com") for name in ("rev", "exp", "dis")]
    async with sessionmaker() as session:
        now = utcnow()
        await session.execute(update(ApiKey).where(ApiKey.user_id == revoked.id).values(revoked_at=now))
        await session.execute(update(ApiKey).where(ApiKey.user_id == expired.id).values(expires_at=now))
        await session.execute(update(User).where(User.id == disabled.id).values(disabled=True))
        await session.commit()
    answers = {}
    without_key = sdk(user_api, "unused").with_options(default_headers={"Authorization": ""})
    clients = {"missing": without_key, "malformed": sdk(user_api, "not-a-platform-key"),
               "unknown": sdk(user_api, "sk-ft-" + "x" * 43), "revoked": sdk(user_api, revoked.key),
               "expired": sdk(user_api, expired.key), "disabled": sdk(user_api, disabled.key)}  # fmt: skip
    for name, client in clients.items():
        try:
            client.files.list()
        except openai.AuthenticationError as error:
            answers[name] = error.code
    assert answers == {
        "missing": "invalid_api_key", "malformed": "invalid_api_key", "unknown": "invalid_api_key",
        "revoked": "revoked_api_key", "expired": "expired_api_key", "disabled": "account_disabled",
    }  # fmt: skip


async def test_sdk_pause_and_resume(user_api, tiny_model, make_user, seed) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("pauser@acme.example.com")
    client = sdk(user_api, user.key)
    job = await seed.job(user, tiny_model, await seed.file(user), status="queued")
    assert client.fine_tuning.jobs.pause(job).status == "paused"
    with pytest.raises(openai.ConflictError):
        client.fine_tuning.jobs.pause(job)
    assert client.fine_tuning.jobs.resume(job).status == "queued"
    messages = [event.message for event in client.fine_tuning.jobs.list_events(job)]
    assert messages[:2] == ["Job resumed; continuing from the latest checkpoint", "Job paused"]
