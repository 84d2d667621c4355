"""Dataset intelligence through the user API: search, duplicate counts, train/validation overlap, tenancy."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from openai import OpenAI

from tests.jobs.datasets import chat_lines, jsonl

TOPICS = [
    ("How do I boil an egg?", "Put it in boiling water for nine minutes."),
    ("What is the capital of France?", "Paris is the capital of France."),
    ("How do plants make food?", "Plants use sunlight to turn water and carbon dioxide into sugar."),
    ("Why is the sky blue?", "Air scatters blue light more than red light."),
    ("How do I reverse a list in Python?", "Call reversed() or use slicing with [::-1]."),
    ("What does a compiler do?", "It translates source code into machine code."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What is photosynthesis?", "The process plants use to make sugar from light."),
]


def conversation(question: str, answer: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def wait_indexed(client: httpx.Client, file_id: str, timeout: float = 240) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/files/{file_id}").json()
        if body["index_status"] in ("indexed", "failed"):
            return body
        time.sleep(0.5)
    raise AssertionError(f"{file_id} not indexed after {timeout}s")


def upload(client: httpx.Client, lines: list[dict[str, object]], name: str = "data.jsonl") -> str:
    response = client.post("/v1/files", files={"file": (name, jsonl(lines))}, data={"purpose": "fine-tune"})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


@pytest.fixture
async def two_tenants(user_api, cpu_worker, make_user):  # type: ignore[no-untyped-def]
    alice = await make_user("alice@a.example", organization="org-a")
    carol = await make_user("carol@b.example", organization="org-b")
    clients = [httpx.Client(base_url=user_api, headers=user.headers, timeout=90) for user in (alice, carol)]
    yield clients
    for client in clients:
        client.close()


@pytest.mark.slow
def test_search_duplicates_and_tenancy(two_tenants) -> None:  # type: ignore[no-untyped-def]
    alice, carol = two_tenants
    lines = [conversation(q, a) for q, a in TOPICS]
    planted = [*lines, lines[1], lines[4]]  # two exact duplicates
    planted.append(conversation("What city is the capital of France?", "The capital of France is Paris."))
    alice_file = upload(alice, planted)
    carol_file = upload(carol, [conversation(q, a) for q, a in TOPICS])
    alice_body, carol_body = wait_indexed(alice, alice_file), wait_indexed(carol, carol_file)
    assert alice_body["index_status"] == "indexed" and carol_body["index_status"] == "indexed"
    assert alice_body["duplicates"] == 2
    assert alice_body["near_duplicates"] >= 1

    report = alice.get(f"/v1/files/{alice_file}/duplicates").json()["report"]
    assert sorted(report["exact"]) == [[2, 9], [5, 10]]
    assert any(2 in group and 11 in group for group in report["near"] + report["exact"])

    hits = alice.get(f"/v1/files/{alice_file}/search", params={"q": "french capital city", "limit": 3}).json()["data"]
    assert hits and hits[0]["line"] in (2, 9, 11)
    assert all(1 <= hit["line"] <= len(planted) for hit in hits)

    # Each tenant only ever sees their own examples: the other's file is as good as missing.
    assert carol.get(f"/v1/files/{alice_file}/search", params={"q": "capital"}).status_code == 404
    assert alice.get(f"/v1/files/{carol_file}/search", params={"q": "capital"}).status_code == 404
    carol_hits = carol.get(f"/v1/files/{carol_file}/search", params={"q": "capital", "limit": 20}).json()["data"]
    assert {hit["line"] for hit in carol_hits} <= set(range(1, len(TOPICS) + 1))


@pytest.mark.slow
def test_search_answers_while_another_file_is_indexing(two_tenants) -> None:  # type: ignore[no-untyped-def]
    alice, _ = two_tenants
    small = upload(alice, [conversation(q, a) for q, a in TOPICS])
    wait_indexed(alice, small)
    big = upload(alice, chat_lines(600))
    started = time.monotonic()
    answered_while_indexing = False
    while time.monotonic() - started < 120:
        response = alice.get(f"/v1/files/{small}/search", params={"q": "spider legs", "limit": 1})
        assert response.status_code == 200, response.text
        assert response.json()["data"][0]["line"] == 7
        if alice.get(f"/v1/files/{big}").json()["index_status"] in ("pending", "indexing"):
            answered_while_indexing = True
            break
    assert answered_while_indexing
    assert wait_indexed(alice, big)["index_status"] == "indexed"


@pytest.mark.slow
async def test_overlap_warning_before_training(
    user_api, cpu_worker, make_user, tiny_model, no_gpu_worker, settings
) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("overlap@example.com")
    client = OpenAI(base_url=f"{user_api}/v1", api_key=user.key, max_retries=0)
    # Two more unrelated lines after the topics: a job needs 10 training examples (MIN_TRAINING_EXAMPLES).
    extra = [("Which planet is largest?", "Jupiter is."), ("How far is the Moon?", "About 384,000 km.")]
    training_lines = [conversation(q, a) for q, a in [*TOPICS, *extra]]
    validation_lines = [training_lines[0], training_lines[3], conversation("Name a prime number.", "Seven is prime.")]
    training = client.files.create(file=("t.jsonl", jsonl(training_lines)), purpose="fine-tune")
    validation = client.files.create(file=("v.jsonl", jsonl(validation_lines)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=tiny_model, training_file=training.id, validation_file=validation.id)
    deadline = time.monotonic() + 240
    while client.fine_tuning.jobs.retrieve(job.id).status == "validating_files" and time.monotonic() < deadline:
        time.sleep(0.5)
    queued = client.fine_tuning.jobs.retrieve(job.id)
    assert queued.status == "queued", queued.error
    overlap = queued.estimate["validation_overlap"]
    assert overlap["count"] == 2 and overlap["validation_lines"] == 3
    assert {(pair["validation_line"], pair["training_line"]) for pair in overlap["pairs"]} == {(1, 1), (2, 4)}
    warnings = [event for event in client.fine_tuning.jobs.list_events(job.id, limit=50) if event.level == "warn"]
    assert any("near-duplicates of training examples" in event.message for event in warnings)
    # The two validation lines are verbatim copies: their similarity is 1, judged at the configured threshold.
    assert overlap["threshold"] == settings.near_duplicate_threshold
    assert all(pair["score"] >= 0.999 for pair in overlap["pairs"]), overlap["pairs"]


def _reindex(*options: str) -> tuple[int, str]:
    """`python -m app.admin.bootstrap reindex-vectors` as an operator runs it (docs/operations.md §7)."""
    done = subprocess.run([sys.executable, "-m", "app.admin.bootstrap", "reindex-vectors", *options],
                          capture_output=True, text=True, timeout=120, env=os.environ)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return int(done.stdout), done.stderr


@pytest.mark.slow
async def test_reindex_builds_lost_vectors_again(user_api, cpu_worker, make_user, sessionmaker) -> None:  # type: ignore[no-untyped-def]
    from app.core.config import get_settings
    from app.files.tables import File
    from app.vectors.connect import open_point_store
    from app.vectors.points import FileScope

    user = await make_user("reindex@example.com", organization="reindex-org")
    client = httpx.Client(base_url=user_api, headers=user.headers, timeout=90)
    kept = upload(client, [conversation(q, a) for q, a in TOPICS], "kept.jsonl")
    dropped = upload(client, [conversation(q, a) for q, a in TOPICS[:4]], "dropped.jsonl")
    assert wait_indexed(client, kept)["index_status"] == wait_indexed(client, dropped)["index_status"] == "indexed"
    assert client.delete(f"/v1/files/{dropped}").status_code == 200
    assert _reindex() == (0, "Queued 0 file(s) for indexing; the CPU workers index them now "
                                "(GET /v1/files/{id}: index_status).\n")  # fmt: skip

    # Qdrant loses the file's vectors (an emptied volume, a snapshot older than the database).
    store = open_point_store(get_settings(), os.environ.get("VECTOR_SERVICE_URL"))
    scope = FileScope(kept, user.id, user.organization_id)
    try:
        store.delete_file(kept)
        assert store.count(scope) == 0
        assert client.get(f"/v1/files/{kept}/search", params={"q": "spider legs"}).json()["data"] == []
        # Every stored file, the deleted one too (its vectors are removed, again if need be).
        count, said = _reindex("--all")
        assert count == 2 and "(1 deleted: their vectors are removed)" in said, said
        assert wait_indexed(client, kept)["index_status"] == "indexed"
        assert store.count(scope) == len(TOPICS)
    finally:
        store.close()
    hits = client.get(f"/v1/files/{kept}/search", params={"q": "spider legs", "limit": 1}).json()["data"]
    assert hits[0]["line"] == 7

    # Without --all: what never finished indexing, and with --since what was uploaded from then on.
    async with sessionmaker() as session:
        row = await session.get(File, kept)
        assert row is not None
        row.index_status, uploaded_at = "failed", row.created_at
        await session.commit()
    assert _reindex()[0] == 1
    assert wait_indexed(client, kept)["index_status"] == "indexed"
    assert _reindex("--since", uploaded_at.strftime("%Y-%m-%dT%H:%M:%S"))[0] == 1
    assert _reindex("--since", "2999-01-01T00:00:00")[0] == 0
    assert wait_indexed(client, kept)["index_status"] == "indexed"
    client.close()
