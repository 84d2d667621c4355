"""The tenant decisions of policies/README.md, through the user API: each answer, and that nothing else moved.

Every error body is checked against OpenAI's ErrorResponse schema too (tests/wire).
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from app.files.tables import File
from app.jobs.tables import Checkpoint, Job
from tests.api.conftest import Seeder, sdk
from tests.jobs.datasets import chat_lines, jsonl
from tests.wire.openai_wire import violations


def refused(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert violations("ErrorResponse", response.json()) == []
    return response.json()["error"]  # type: ignore[no-any-return]


async def count(sessionmaker, table: type) -> int:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_an_operator_reads_no_tenant_object_and_creates_nothing(  # type: ignore[no-untyped-def]
    user_api, tiny_model, make_user, seed: Seeder, sessionmaker
) -> None:
    owner = await make_user("owner@acme.example.com")
    operator = await make_user("olga@ops.example.com", "ops", ["operator"])
    training = await seed.file(owner)
    job = await seed.job(owner, tiny_model, training, status="succeeded")
    model = await seed.model(owner, job, tiny_model)
    checkpoint = await seed.checkpoint(job, 4)
    with httpx.Client(base_url=user_api, headers=operator.headers, timeout=60) as http:
        assert http.get("/v1/files").json()["data"] == []
        assert http.get("/v1/fine_tuning/jobs").json()["data"] == []
        assert [m["id"] for m in http.get("/v1/models").json()["data"]] == [tiny_model]  # the catalog only
        tenant_paths = (
            f"/v1/files/{training}", f"/v1/files/{training}/content", f"/v1/fine_tuning/jobs/{job}/events",
            f"/v1/fine_tuning/jobs/{job}/checkpoints/{checkpoint}/download", f"/v1/models/{model}/files",
        )  # fmt: skip
        for path in tenant_paths:
            assert refused(http.get(path), 404)["code"] in ("not_found", "model_not_found"), path
        jobs_before, files_before = await count(sessionmaker, Job), await count(sessionmaker, File)
        created = refused(http.post("/v1/fine_tuning/jobs", json={"model": tiny_model, "training_file": training}), 403)
        # No id is named: none was stored, and none was drawn.
        assert "ftjob-" not in str(created["message"]) and created["type"] == "permission_error"
        dataset = {"file": ("x.jsonl", jsonl(chat_lines(10)))}
        upload = http.post("/v1/files", files=dataset, data={"purpose": "fine-tune"})
        assert "file-" not in str(refused(upload, 403)["message"])
        assert (await count(sessionmaker, Job), await count(sessionmaker, File)) == (jobs_before, files_before)


async def test_a_colleague_trains_on_an_organization_file_and_both_see_the_job(  # type: ignore[no-untyped-def]
    user_api, cpu_worker, tiny_model, make_user, seed: Seeder
) -> None:
    owner = await make_user("owner@acme.example.com")
    mate = await make_user("mate@acme.example.com")
    outsider = await make_user("outsider@globex.example.com", "globex")
    training = await seed.file(owner)
    job = sdk(user_api, mate.key).fine_tuning.jobs.create(model=tiny_model, training_file=training)
    assert job.training_file == training
    assert [listed.id for listed in sdk(user_api, owner.key).fine_tuning.jobs.list()] == [job.id]
    with httpx.Client(base_url=user_api, headers=outsider.headers, timeout=60) as http:
        body = {"model": tiny_model, "training_file": training}
        assert refused(http.post("/v1/fine_tuning/jobs", json=body), 404)["code"] == "file_not_found"


@pytest.mark.parametrize("action", ["cancel", "pause", "resume"])
async def test_a_colleague_who_reads_a_job_is_told_why_it_may_not_control_it(  # type: ignore[no-untyped-def]
    user_api, tiny_model, make_user, seed: Seeder, sessionmaker, action: str
) -> None:
    owner = await make_user("owner@acme.example.com")
    mate = await make_user("mate@acme.example.com")
    job = await seed.job(owner, tiny_model, await seed.file(owner), status="paused" if action == "resume" else "queued")
    with httpx.Client(base_url=user_api, headers=mate.headers, timeout=60) as http:
        assert http.get(f"/v1/fine_tuning/jobs/{job}").status_code == 200
        error = refused(http.post(f"/v1/fine_tuning/jobs/{job}/{action}"), 403)
    assert error["param"] == "fine_tuning_job_id" and error["code"] == "forbidden"
    assert f"may not {action} it" in str(error["message"]) and "owner" in str(error["message"])
    async with sessionmaker() as session:
        assert (await session.get(Job, job)).status == ("paused" if action == "resume" else "queued")  # type: ignore[union-attr]


async def test_checkpoint_models_are_models_of_their_own(  # type: ignore[no-untyped-def]
    user_api, tiny_model, make_user, seed: Seeder, sessionmaker
) -> None:
    """OpenAI's rule: a succeeded job's checkpoints are models `ft:…:ckpt-step-N`, listed and deleted one by one."""
    owner = await make_user("owner@acme.example.com")
    mate = await make_user("mate@acme.example.com")
    outsider = await make_user("outsider@globex.example.com", "globex")
    client = sdk(user_api, owner.key)
    job = await seed.job(owner, tiny_model, await seed.file(owner), status="succeeded")
    tuned = await seed.model(owner, job, tiny_model)
    async with sessionmaker() as session:  # the job names the model it made, as the worker writes it
        (await session.get(Job, job)).fine_tuned_model = tuned  # type: ignore[union-attr]
        await session.commit()
    first, second = await seed.checkpoint(job, 4), await seed.checkpoint(job, 8)
    names = [c.fine_tuned_model_checkpoint for c in client.fine_tuning.jobs.checkpoints.list(job)]
    assert names == [f"{tuned}:ckpt-step-8", f"{tuned}:ckpt-step-4"]
    assert set(names) <= {model.id for model in client.models.list()}
    assert client.models.retrieve(names[1]).model_extra["checkpoint"] == {"id": first, "step_number": 4}

    deleted = client.models.delete(tuned)
    assert deleted.deleted and sorted(deleted.model_extra["checkpoint_models_kept"]) == sorted(names)
    assert client.models.retrieve(names[0]).id == names[0]  # still a model, still downloadable
    download = f"{user_api}/v1/fine_tuning/jobs/{job}/checkpoints/{second}/download"
    assert httpx.get(download, headers=owner.headers, timeout=60).status_code == 200

    with httpx.Client(base_url=user_api, timeout=60) as http:
        assert refused(http.delete(f"/v1/models/{names[0]}", headers=mate.headers), 403)["param"] == "model"
        assert refused(http.get(f"/v1/models/{names[0]}", headers=outsider.headers), 404)["code"] == "model_not_found"
    assert client.models.delete(names[0]).deleted
    assert httpx.get(download, headers=owner.headers, timeout=60).status_code == 404
    assert [c.id for c in client.fine_tuning.jobs.checkpoints.list(job)] == [first]
    assert {model.id for model in client.models.list()} == {tiny_model, names[1]}
    async with sessionmaker() as session:
        assert (await session.get(Checkpoint, second)).deleted  # type: ignore[union-attr]
