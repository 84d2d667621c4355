"""Every user-API endpoint called by every kind of caller, compared with one explicit table.

The cast: the owner of the objects, a member of the owner's organization, a user
of another organization, an operator (role `operator` only), a platform admin (role
`admin` only) and a caller without a key. A member may read, list and download the
organization's objects and train on its files, but not change them: that is a 403
which says why, since the member can see the object; another organization's objects
answer 404 exactly like missing ones. An operator operates through the admin API and
is nobody's colleague here: no tenant object, and a create is a 403 naming no id.
The admin may do everything (policies/README.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.evals.tables import Eval, EvalRun
from app.files.tables import File
from app.finetuned.tables import FineTunedModel
from app.jobs.tables import Job
from tests.api.conftest import EVAL_CRITERION, EVAL_ITEM_SCHEMA, EVAL_ROW, Seeder
from tests.jobs.datasets import chat_lines, jsonl

ROLES = ("owner", "member", "outsider", "operator", "admin", "anonymous")

# Placeholders: {file} {job} {done_job} {checkpoint} {model} are the owner's shared objects;
# {new_file} {new_queued_job} {new_paused_job} {new_model} are made afresh for every caller,
# so one caller's allowed change never decides what the next caller sees.
# fmt: off
TABLE: dict[str, tuple[int, int, int, int, int, int]] = {
    # request                                                           owner member outsider operator admin anonymous
    # First: the token count queues behind the indexing that every upload below starts on the CPU worker.
    "POST /v1/fine_tuning/jobs/estimate":                                 (200, 200, 404, 404, 200, 401),
    "POST /v1/files":                                                     (200, 200, 200, 403, 200, 401),
    "GET /v1/files":                                                      (200, 200, 200, 200, 200, 401),
    "GET /v1/files/{file}":                                               (200, 200, 404, 404, 200, 401),
    "GET /v1/files/{file}/content":                                       (200, 200, 404, 404, 200, 401),
    "GET /v1/files/{file}/duplicates":                                    (200, 200, 404, 404, 200, 401),
    # 409: authorized, and the file is not indexed yet (indexing is tested elsewhere).
    "GET /v1/files/{file}/search?q=capital":                              (409, 409, 404, 404, 409, 401),
    "DELETE /v1/files/{new_file}":                                        (200, 403, 404, 404, 200, 401),
    "POST /v1/fine_tuning/jobs":                                          (200, 200, 404, 403, 200, 401),
    "GET /v1/fine_tuning/jobs":                                           (200, 200, 200, 200, 200, 401),
    "GET /v1/fine_tuning/jobs/{job}":                                     (200, 200, 404, 404, 200, 401),
    "GET /v1/fine_tuning/jobs/{job}/events":                              (200, 200, 404, 404, 200, 401),
    "GET /v1/fine_tuning/jobs/{done_job}/events?stream=true":             (200, 200, 404, 404, 200, 401),
    "GET /v1/fine_tuning/jobs/{job}/checkpoints":                         (200, 200, 404, 404, 200, 401),
    "GET /v1/fine_tuning/jobs/{job}/checkpoints/{checkpoint}/download":   (200, 200, 404, 404, 200, 401),
    "POST /v1/fine_tuning/jobs/{new_queued_job}/cancel":                  (200, 403, 404, 404, 200, 401),
    "POST /v1/fine_tuning/jobs/{new_queued_job}/pause":                   (200, 403, 404, 404, 200, 401),
    "POST /v1/fine_tuning/jobs/{new_paused_job}/resume":                  (200, 403, 404, 404, 200, 401),
    "GET /v1/models":                                                     (200, 200, 200, 200, 200, 401),
    "GET /v1/models/{base}":                                              (200, 200, 200, 200, 200, 401),
    "GET /v1/models/{model}":                                             (200, 200, 404, 404, 200, 401),
    "GET /v1/models/{model}/files":                                       (200, 200, 404, 404, 200, 401),
    "GET /v1/models/{model}/download":                                    (200, 200, 404, 404, 200, 401),
    "GET /v1/models/{model}/file?path=adapter_config.json":               (200, 200, 404, 404, 200, 401),
    "DELETE /v1/models/{new_model}":                                      (200, 403, 404, 404, 200, 401),
    # Asked of the owner's fine-tuned model. This harness's API has no engine: those allowed hear 404
    # model_not_served, the outsider and the operator 404 model_not_found (tests/inference has the engine).
    "POST /v1/chat/completions":                                          (404, 404, 404, 404, 404, 401),
    # Evals belong to their organization like files: a member reads them and may start runs (theirs then);
    # only the owner renames or deletes an eval, only a run's owner cancels or deletes it.
    "POST /v1/evals":                                                     (201, 201, 201, 403, 201, 401),
    "GET /v1/evals":                                                      (200, 200, 200, 200, 200, 401),
    "GET /v1/evals/{eval}":                                               (200, 200, 404, 404, 200, 401),
    "POST /v1/evals/{new_eval}":                                          (200, 403, 404, 404, 200, 401),
    "DELETE /v1/evals/{new_eval}":                                        (200, 403, 404, 404, 200, 401),
    "POST /v1/evals/{eval}/runs":                                         (201, 201, 404, 404, 201, 401),
    "GET /v1/evals/{eval}/runs":                                          (200, 200, 404, 404, 200, 401),
    "GET /v1/evals/{eval}/runs/{run}":                                    (200, 200, 404, 404, 200, 401),
    "POST /v1/evals/{eval}/runs/{new_run}":                               (200, 403, 404, 404, 200, 401),
    "POST /v1/evals/{eval}/runs/{new_run}/cancel":                        (200, 403, 404, 404, 200, 401),
    "DELETE /v1/evals/{eval}/runs/{new_run}":                             (200, 403, 404, 404, 200, 401),
    "GET /v1/evals/{eval}/runs/{run}/output_items":                       (200, 200, 404, 404, 200, 401),
    "GET /v1/evals/{eval}/runs/{run}/output_items/{item}":                (200, 200, 404, 404, 200, 401),
}
# fmt: on


def _shape(method: str, path: str) -> str:
    """`GET /v1/files/{}`: a request with its ids and query string taken out."""
    return f"{method.upper()} {re.sub(r'{[^}]*}', '{}', path.split('?', 1)[0])}"


def test_the_table_names_every_endpoint_of_the_user_api() -> None:
    """A new endpoint fails here until the table says who may call it."""
    from app.api.user_app import app

    served = {_shape(method, path) for path, operations in app.openapi()["paths"].items() for method in operations}
    served -= {"GET /health", "GET /ready"}
    assert served <= {_shape(*request.split(" ", 1)) for request in TABLE}


@dataclass
class World:
    """The cast, their keys, and every object made for the test with the organization it belongs to."""

    seed: Seeder
    base: str
    people: dict[str, Any]
    shared: dict[str, str]
    outsiders: dict[str, str]
    organization_of: dict[str, str]

    async def fresh(self, placeholder: str) -> str:
        """A new object of the owner's for a mutation (the {new_*} placeholders)."""
        owner = self.people["owner"]
        if placeholder == "new_file":
            object_id = await self.seed.file(owner)
        elif placeholder in ("new_queued_job", "new_paused_job"):
            status = "queued" if placeholder == "new_queued_job" else "paused"
            object_id = await self.seed.job(owner, self.base, self.shared["file"], status=status)
        elif placeholder == "new_eval":
            object_id = await self.seed.eval(owner)
        elif placeholder == "new_run":
            object_id = await self.seed.eval_run(owner, self.shared["eval"])
        else:
            job = await self.seed.job(owner, self.base, self.shared["file"], status="succeeded")
            self.organization_of[job] = owner.organization_id
            object_id = await self.seed.model(owner, job, self.base)
        self.organization_of[object_id] = owner.organization_id
        return object_id


@pytest.fixture
async def world(make_user, seed: Seeder, tiny_model: str) -> World:  # type: ignore[no-untyped-def]
    people = {
        "owner": await make_user("owner@acme.example.com", "acme"),
        "member": await make_user("member@acme.example.com", "acme"),
        "outsider": await make_user("outsider@globex.example.com", "globex"),
        "operator": await make_user("olga@ops.example.com", "ops", ["operator"]),
        "admin": await make_user("admin@ops.example.com", "ops", ["admin"]),
    }
    owner, outsider = people["owner"], people["outsider"]
    file = await seed.file(owner)
    job = await seed.job(owner, tiny_model, file)
    done_job = await seed.job(owner, tiny_model, file, status="cancelled")
    shared = {
        "file": file, "job": job, "done_job": done_job, "base": tiny_model,
        "checkpoint": await seed.checkpoint(job, 4),
        "model": await seed.model(owner, done_job, tiny_model),
        "eval": await seed.eval(owner),
    }  # fmt: skip
    shared["run"] = await seed.eval_run(owner, shared["eval"], status="completed")
    shared["item"] = await seed.output_item(shared["run"])
    # The outsider's own objects: what their lists must show, and what nobody else's may.
    outsider_file = await seed.file(outsider)
    outsider_job = await seed.job(outsider, tiny_model, outsider_file, status="cancelled")
    outsider_model = await seed.model(outsider, outsider_job, tiny_model)
    organization_of = {key: owner.organization_id for key in (file, job, done_job, shared["model"])}
    organization_of.update(dict.fromkeys((outsider_file, outsider_job, outsider_model), outsider.organization_id))
    outsiders = {"file": outsider_file, "job": outsider_job, "model": outsider_model}
    return World(seed, tiny_model, people, shared, outsiders, organization_of)


JOB_BODY_REQUESTS = ("POST /v1/fine_tuning/jobs", "POST /v1/fine_tuning/jobs/estimate")
LISTS = {"GET /v1/files": "file", "GET /v1/fine_tuning/jobs": "job", "GET /v1/models": "model"}
FRESH = ("new_file", "new_queued_job", "new_paused_job", "new_model", "new_eval", "new_run")


def _strangers_headers(world: World) -> set[str]:
    """The callers who may not read the owner's model: the outsider, and the operator (no tenant objects)."""
    return {str(world.people[role].headers["Authorization"]) for role in ("outsider", "operator")}


def _headers(world: World, role: str) -> dict[str, str]:
    return world.people[role].headers if role in world.people else {}


def _send(http: httpx.Client, request: str, targets: dict[str, str], world: World) -> httpx.Response:
    method, template = request.split(" ", 1)
    path = template.format(**targets)
    if request == "POST /v1/files":
        return http.post(path, files={"file": ("mine.jsonl", jsonl(chat_lines(3)))}, data={"purpose": "fine-tune"})
    if request in JOB_BODY_REQUESTS:
        return http.post(path, json={"model": world.base, "training_file": world.shared["file"]})
    if request == "POST /v1/evals":
        config = {"type": "custom", "item_schema": EVAL_ITEM_SCHEMA}
        return http.post(path, json={"data_source_config": config, "testing_criteria": [EVAL_CRITERION]})
    if request == "POST /v1/evals/{new_eval}":
        return http.post(path, json={"name": "renamed"})
    if request == "POST /v1/evals/{eval}/runs":
        return http.post(path, json={"data_source": {"type": "jsonl", "source": {"type": "file_content",
                                                                                 "content": [EVAL_ROW]}}})  # fmt: skip
    if request == "POST /v1/chat/completions":
        response = http.post(path, json={"model": targets["model"], "messages": [{"role": "user", "content": "hi"}]})
        if response.status_code == 404:  # allowed or not shows in the code: a stranger's is a plain not-found
            stranger = http.headers.get("authorization") in _strangers_headers(world)
            expected = "model_not_found" if stranger else "model_not_served"
            assert response.json()["error"]["code"] == expected, response.text
        return response
    return http.request(method, path)


async def _state(sessionmaker, object_id: str) -> Any:  # type: ignore[no-untyped-def]
    """What a mutation would change: a file's or model's deletion, a job's status."""
    async with sessionmaker() as session:
        if object_id.startswith("file-"):
            return await session.scalar(select(File.deleted_at).where(File.id == object_id))
        if object_id.startswith("ftjob-"):
            return await session.scalar(select(Job.status).where(Job.id == object_id))
        if object_id.startswith("eval_"):
            return tuple((await session.execute(select(Eval.deleted_at, Eval.name).where(Eval.id == object_id))).one())
        if object_id.startswith("evalrun_"):
            return await session.scalar(select(EvalRun.status).where(EvalRun.id == object_id))
        return await session.scalar(select(FineTunedModel.deleted_at).where(FineTunedModel.id == object_id))


async def test_every_endpoint_for_every_caller_matches_the_table(  # type: ignore[no-untyped-def]
    user_api, cpu_worker, world: World, sessionmaker
) -> None:
    answered: dict[tuple[str, str], int] = {}
    denied_but_changed: list[tuple[str, str]] = []
    listings: dict[tuple[str, str], list[str]] = {}
    clients = {role: httpx.Client(base_url=user_api, timeout=150, headers=_headers(world, role)) for role in ROLES}
    for request in TABLE:
        for role, http in clients.items():
            fresh = {key: await world.fresh(key) for key in FRESH if "{" + key + "}" in request}
            before = [await _state(sessionmaker, object_id) for object_id in fresh.values()]
            response = _send(http, request, {**world.shared, **fresh}, world)
            answered[(request, role)] = response.status_code
            if response.status_code >= 300 and before != [await _state(sessionmaker, i) for i in fresh.values()]:
                denied_but_changed.append((request, role))
            if response.status_code == 200 and request in ("POST /v1/files", "POST /v1/fine_tuning/jobs"):
                world.organization_of[response.json()["id"]] = world.people[role].organization_id
            if response.status_code == 200 and request in LISTS:
                listings[(request, role)] = [item["id"] for item in response.json()["data"]]
    for http in clients.values():
        http.close()

    expected = {(request, role): codes[ROLES.index(role)] for request, codes in TABLE.items() for role in ROLES}
    unexpected = {key: (answered[key], expected[key]) for key in expected if answered[key] != expected[key]}
    assert unexpected == {}, "(request, caller): (answered, expected)"
    assert denied_but_changed == []
    _check_listings(world, listings)


def _check_listings(world: World, listings: dict[tuple[str, str], list[str]]) -> None:
    """No list shows a foreign id, and each shows the caller's organization's objects (the admin's: all)."""
    assert {request for request, _ in listings} == set(LISTS)
    for (name, role), listed in listings.items():
        ids = [object_id for object_id in listed if object_id != world.base]
        unknown = [object_id for object_id in ids if object_id not in world.organization_of]
        assert unknown == [], f"{name} for {role} lists objects this test never made: {unknown}"
        kind = LISTS[name]
        mine, theirs = world.shared[kind], world.outsiders[kind]
        if role == "admin":
            assert {mine, theirs} <= set(ids), (name, role)
            continue
        if role == "operator":
            assert ids == [], f"{name} shows tenant objects to an operator: {ids}"
            continue
        organization = world.people[role].organization_id
        foreign = [object_id for object_id in ids if world.organization_of[object_id] != organization]
        assert foreign == [], f"{name} for {role} shows another organization's objects: {foreign}"
        assert (theirs if role == "outsider" else mine) in ids, (name, role)
