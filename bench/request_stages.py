"""What one authorized read is made of, stage by stage, against a `/health` round trip in the same run.

    python -m bench.request_stages [--repeat 300] [--out bench/out/request_stages.json]

Starts the same embedded servers and seed as `bench.request_path`, then times each stage of a job
retrieve on its own, in this process (uvloop, as uvicorn runs the API), `--repeat` times each,
interleaved: a PostgreSQL session (checkout with the pool's pre-ping, one primary-key read, commit),
the Cerbos `CheckResources` and `PlanResources` calls over the SDK's HTTP client and over its gRPC
client, and the job's serialization (pydantic to JSON). The baseline is a `/health` round trip to the
API process over one keep-alive connection. This is what chose gRPC over HTTP for Cerbos decisions
(docs/evidence.md, "Request path").
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import uvloop
from pydantic import TypeAdapter

from bench.common import report_head, write_report
from bench.request_path import REPO_ROOT, Api, seeded_servers, start_api

Stage = Callable[[], Awaitable[object]]
# How FastAPI serializes a route that returns `dict[str, Any]` (the lists).
LIST_ADAPTER: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


async def stages(env: dict[str, str], url: str, job_id: str) -> tuple[dict[str, Stage], Callable[[], Awaitable[None]]]:
    """The stages, built on clients made once (as the API's lifespan does), and what closes them."""
    from cerbos.engine.v1 import engine_pb2
    from cerbos.request.v1 import request_pb2
    from cerbos.sdk._async._grpc import AsyncCerbosClient as GrpcClient
    from cerbos.sdk.client import AsyncCerbosClient as HttpClient
    from cerbos.sdk.model import Principal, Resource, ResourceDesc, ResourceList
    from google.protobuf.struct_pb2 import Value

    from app.authz.filters import plan_to_condition
    from app.authz.kinds import Kind
    from app.authz.principal import Principal as AuthzPrincipal
    from app.authz.service import Authorizer
    from app.core.config import get_settings
    from app.core.database import create_engine, create_sessionmaker
    from app.core.pagination import page
    from app.jobs import repository as jobs_repository
    from app.jobs.schemas import JobObject
    from app.jobs.tables import Job

    settings = get_settings()
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    http_cerbos = HttpClient(env["CERBOS_URL"], timeout_secs=2)
    grpc_cerbos = GrpcClient(env["CERBOS_GRPC_ADDRESS"], timeout_secs=2)
    api = httpx.AsyncClient(base_url=url)
    async with sessionmaker() as session:
        job = await session.get(Job, job_id)
    assert job is not None
    attrs = {"owner_id": job.owner_id, "organization_id": job.organization_id}
    principal = Principal(id=job.owner_id, roles={"user"}, attr={"organization_id": job.organization_id})
    grpc_attrs = {name: Value(string_value=value) for name, value in attrs.items()}
    grpc_principal = engine_pb2.Principal(
        id=job.owner_id, roles=["user"], attr={"organization_id": grpc_attrs["organization_id"]}
    )
    grpc_resource = engine_pb2.Resource(id=job.id, kind="fine_tuning_job", attr=grpc_attrs)

    async def database() -> object:
        async with sessionmaker() as session:
            row = await session.get(Job, job_id, populate_existing=True)
            await session.commit()
        return row

    async def check_http() -> object:
        resources = ResourceList().add(Resource(id=job.id, kind="fine_tuning_job", attr=attrs), {"read"})
        return (await http_cerbos.check_resources(principal, resources)).get_resource(job.id)

    async def check_grpc() -> object:
        entry = request_pb2.CheckResourcesRequest.ResourceEntry(actions=["read"], resource=grpc_resource)
        return await grpc_cerbos.check_resources(grpc_principal, [entry])

    async def plan_http() -> object:
        return await http_cerbos.plan_resources("read", principal, ResourceDesc(kind="fine_tuning_job"))

    async def plan_grpc() -> object:
        resource = engine_pb2.PlanResourcesInput.Resource(kind="fine_tuning_job")
        return await grpc_cerbos.plan_resources("read", grpc_principal, resource)

    async def serialize() -> object:
        return JobObject.of(job).model_dump_json()

    # A job list's own stages: the plan's translation to SQL, the page's query, its objects and JSON.
    authorizer = Authorizer(env["CERBOS_URL"], grpc_address=env["CERBOS_GRPC_ADDRESS"])
    owner = AuthzPrincipal(id=job.owner_id, roles=("user",), organization_id=job.organization_id)
    plan = await authorizer._transport.plan(owner, str(Kind.FINE_TUNING_JOB), "read", None)
    visible = plan_to_condition(plan, Job)

    async def translate_plan() -> object:
        return plan_to_condition(plan, Job)

    async def list_query() -> object:
        async with sessionmaker() as session:
            rows, _ = await jobs_repository.visible_page(session, visible, None, None, 20)
            await session.commit()
        return rows

    async with sessionmaker() as session:
        page_rows, _ = await jobs_repository.visible_page(session, visible, None, None, 20)

    async def serialize_list() -> object:
        return LIST_ADAPTER.dump_json(page([JobObject.of(row) for row in page_rows], False))

    async def health() -> object:
        return (await api.get("/health")).raise_for_status()

    async def close() -> None:
        await api.aclose()
        await http_cerbos.close()
        await grpc_cerbos.close()
        await authorizer.close()
        await engine.dispose()

    chosen: dict[str, Stage] = {
        "health_round_trip": health,
        "database_session_get_commit": database,
        "cerbos_check_http": check_http,
        "cerbos_check_grpc": check_grpc,
        "cerbos_plan_http": plan_http,
        "cerbos_plan_grpc": plan_grpc,
        "serialize_job": serialize,
        "translate_plan": translate_plan,
        "job_list_query": list_query,
        "serialize_job_list": serialize_list,
    }
    return chosen, close


async def measure(env: dict[str, str], url: str, job_id: str, repeat: int) -> dict[str, dict[str, float]]:
    chosen, close = await stages(env, url, job_id)
    timings: dict[str, list[float]] = {name: [] for name in chosen}
    try:
        for round_number in range(repeat + 20):
            for name, stage in chosen.items():
                started = time.perf_counter()
                await stage()
                if round_number >= 20:  # the first rounds warm the pools up
                    timings[name].append(time.perf_counter() - started)
    finally:
        await close()
    health = statistics.median(timings["health_round_trip"])
    return {
        name: {
            "p50_ms": round(1000 * statistics.median(values), 3),
            "ratio_to_health": round(statistics.median(values) / health, 2),
        }
        for name, values in timings.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("bench/out/request_stages.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="request-stages-") as scratch:
        stack, _key, job_id = seeded_servers(Path(scratch))
        api = Api("candidate", REPO_ROOT)
        try:
            start_api(stack, api, Path(scratch))
            result = uvloop.run(measure(stack.env, api.url, job_id, args.repeat))
        finally:
            if api.process is not None:
                api.process.stop()
            stack.stop()
    write_report(args.out, {**report_head("bench.request_stages"), "stages": result})


if __name__ == "__main__":
    main()
