"""What the fine-tuning API adds or must get exactly right: idempotent create, estimate, metadata filter, SSE."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import func, select

from app.jobs.tables import Job
from app.training.hyperparams import total_steps
from tests.api.conftest import sdk
from tests.jobs.datasets import chat_lines, jsonl


async def _job_count(sessionmaker) -> int:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Job)) or 0)


async def test_idempotency_key_returns_the_first_response(user_api, tiny_model, make_user, seed, sessionmaker) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("idem@acme.example.com")
    other = await make_user("idem@globex.example.com", "globex")
    client = sdk(user_api, user.key)
    training = await seed.file(user)
    key = {"Idempotency-Key": "create-run-1"}

    first = client.fine_tuning.jobs.create(model=tiny_model, training_file=training, suffix="a", extra_headers=key)
    again = client.fine_tuning.jobs.create(model=tiny_model, training_file=training, suffix="a", extra_headers=key)
    assert again.model_dump() == first.model_dump()
    assert await _job_count(sessionmaker) == 1

    with pytest.raises(openai.ConflictError) as reused:
        client.fine_tuning.jobs.create(model=tiny_model, training_file=training, suffix="b", extra_headers=key)
    assert reused.value.code == "idempotency_key_reused" and reused.value.param == "Idempotency-Key"
    fresh = client.fine_tuning.jobs.create(model=tiny_model, training_file=training, suffix="a",
                                           extra_headers={"Idempotency-Key": "create-run-2"})  # fmt: skip
    assert fresh.id != first.id
    # Keys belong to the caller: another user's identical key is a new request.
    theirs = sdk(user_api, other.key).fine_tuning.jobs.create(
        model=tiny_model, training_file=await seed.file(other), suffix="a", extra_headers=key
    )
    assert theirs.id not in (first.id, fresh.id)
    assert await _job_count(sessionmaker) == 3

    # A refused request does not burn its key: after the cause is gone the same key creates the job.
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.create(model=tiny_model, training_file="file-000000000000missing",
                                       extra_headers={"Idempotency-Key": "create-run-3"})  # fmt: skip
    retried = client.fine_tuning.jobs.create(
        model=tiny_model, training_file=training, extra_headers={"Idempotency-Key": "create-run-3"}
    )
    assert retried.training_file == training


async def test_concurrent_retries_with_one_key_create_one_job(
    user_api, tiny_model, make_user, seed, sessionmaker
) -> None:  # type: ignore[no-untyped-def]
    """The retry a timed-out client sends while the first request still runs must not create a second job."""
    user = await make_user("racer@acme.example.com")
    training = await seed.file(user)
    body = {"model": tiny_model, "training_file": training}
    headers = {**user.headers, "Idempotency-Key": "race-1"}

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{user_api}/v1/fine_tuning/jobs", json=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(post, range(6)))
    created = {r.json()["id"] for r in responses if r.status_code == 200}
    refused = [r.json()["error"]["code"] for r in responses if r.status_code != 200]
    assert len(created) == 1 and set(refused) <= {"idempotency_key_in_use"}, (created, refused)
    # The SDKs retry an in-use key by themselves: the server tells them to.
    assert all(r.headers["x-should-retry"] == "true" for r in responses if r.status_code != 200)
    assert await _job_count(sessionmaker) == 1


async def test_estimate_counts_real_tokens_and_resolves_hyperparameters(  # type: ignore[no-untyped-def]
    user_api, cpu_worker, tiny_model, tiny_model_path, make_user, seed, sessionmaker, tmp_path
) -> None:
    from app.training.tokenize_report import token_report

    user = await make_user("estimator@acme.example.com")
    training_bytes = jsonl(chat_lines(12))
    training = await seed.file(user, training_bytes)
    validation = await seed.file(user, jsonl(chat_lines(4, offset=40)))
    hyperparameters = {"n_epochs": 2, "batch_size": 4, "lora_r": 4}
    body = {
        "model": tiny_model, "training_file": training, "validation_file": validation,
        "method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
    }  # fmt: skip
    response = httpx.post(f"{user_api}/v1/fine_tuning/jobs/estimate", json=body, headers=user.headers, timeout=150)
    assert response.status_code == 200, response.text
    estimate = response.json()
    assert estimate["object"] == "fine_tuning.job.estimate"
    assert estimate["training_examples"] == 12 and estimate["validation_examples"] == 4

    path = tmp_path / "check.jsonl"
    path.write_bytes(training_bytes)
    expected = token_report(path, str(tiny_model_path), "supervised", 256, True)
    assert estimate["training_tokens"] == expected.total_tokens > 0

    resolved = estimate["hyperparameters"]
    assert (resolved["n_epochs"], resolved["batch_size"], resolved["lora_r"]) == (2, 4, 4)
    assert resolved["learning_rate"] > 0 and resolved["lora_alpha"] == 8  # "auto" values resolved
    assert resolved["fine_tune_type"] == "lora"
    assert estimate["total_steps"] == total_steps(12, estimate["training_tokens"], resolved) > 0
    assert estimate["trained_tokens"] == 2 * estimate["training_tokens"]
    assert estimate["estimated_seconds"] > 0
    assert await _job_count(sessionmaker) == 0  # an estimate creates nothing


async def test_list_filters_on_metadata_as_the_sdk_sends_it(user_api, tiny_model, make_user, seed) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("meta@acme.example.com")
    training = await seed.file(user)
    team_a = [await seed.job(user, tiny_model, training, metadata={"team": "a"}) for _ in range(3)]
    team_b = await seed.job(user, tiny_model, training, metadata={"team": "b", "stage": "eval"})
    unlabelled = await seed.job(user, tiny_model, training, metadata=None)
    client = sdk(user_api, user.key)

    def ids(**query: Any) -> list[str]:
        return [job.id for job in client.fine_tuning.jobs.list(**query)]

    assert ids(metadata={"team": "a"}, limit=1) == list(reversed(team_a))  # filtered, across three pages
    assert ids(metadata={"team": "b"}) == [team_b]
    assert ids(metadata={"team": "b", "stage": "eval"}) == [team_b]
    assert ids(metadata={"team": "b", "stage": "train"}) == []
    assert ids(metadata={}) == ids() and len(ids()) == 5
    assert ids(extra_query={"metadata": "null"}) == [unlabelled]
    assert ids(extra_query={"metadata": json.dumps({"team": "b"})}) == [team_b]
    with pytest.raises(openai.BadRequestError) as bad:
        client.fine_tuning.jobs.list(extra_query={"metadata": "[1, 2]"})
    assert bad.value.param == "metadata"


def sse_events(response: httpx.Response) -> Iterator[dict[str, str]]:
    """Server-sent events as {"event", "id", "data"} dicts (comment lines are keep-alives)."""
    event: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if event:
                yield event
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            event[field] = value.removeprefix(" ")


async def test_event_stream_replays_the_backlog_and_ends_with_done(user_api, tiny_model, make_user, seed) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("stream@acme.example.com")
    client = sdk(user_api, user.key)
    job = client.fine_tuning.jobs.create(model=tiny_model, training_file=await seed.file(user))
    client.fine_tuning.jobs.cancel(job.id)
    stored = [event.id for event in client.fine_tuning.jobs.list_events(job.id, limit=100)]
    url = f"{user_api}/v1/fine_tuning/jobs/{job.id}/events"

    with httpx.stream("GET", url, params={"stream": "true"}, headers=user.headers, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        received = list(sse_events(response))
    assert [e["event"] for e in received] == ["event"] * len(stored) + ["done"]
    assert [e["id"] for e in received[:-1]] == list(reversed(stored))  # oldest first
    assert json.loads(received[-1]["data"]) == {"status": "cancelled"}
    assert json.loads(received[-2]["data"])["message"] == "Job cancelled"

    # Reconnecting with Last-Event-ID sends only what came after it.
    resume = {**user.headers, "Last-Event-ID": stored[-1]}
    with httpx.stream("GET", url, params={"stream": "true"}, headers=resume, timeout=30) as response:
        tail = list(sse_events(response))
    assert [e.get("id") for e in tail[:-1]] == list(reversed(stored))[1:] and tail[-1]["event"] == "done"


async def test_event_stream_delivers_live_events_until_the_job_ends(user_api, tiny_model, make_user, seed) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("live@acme.example.com")
    client = sdk(user_api, user.key)
    job = client.fine_tuning.jobs.create(model=tiny_model, training_file=await seed.file(user))
    url = f"{user_api}/v1/fine_tuning/jobs/{job.id}/events"
    received = []
    with httpx.stream("GET", url, params={"stream": "true"}, headers=user.headers, timeout=30) as response:
        for event in sse_events(response):
            received.append(event)
            if len(received) == 1:  # the backlog arrived: the stream is live now
                threading.Timer(0.5, client.fine_tuning.jobs.cancel, args=[job.id]).start()
    messages = [json.loads(e["data"]).get("message") for e in received if e["event"] == "event"]
    assert "Job cancelled" in messages
    assert received[-1]["event"] == "done" and json.loads(received[-1]["data"])["status"] == "cancelled"
