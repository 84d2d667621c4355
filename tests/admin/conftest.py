"""The admin API's cast (an admin, a read-only operator, a plain user) and rows seeded straight into the DB.

Jobs are written directly (the training runner is not what these tests are about):
running ones get a lease far in the future so the reconciler leaves them alone.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.tables import CatalogEntry
from app.core import ids
from app.core.database import utcnow
from app.files.tables import File
from app.jobs.tables import Job


@dataclass
class Person:
    id: str
    organization_id: str
    key: str
    headers: dict[str, str]


@dataclass
class Cast:
    admin: Person
    operator: Person
    user: Person


def _person(made: Any) -> Person:
    return Person(made.id, made.organization_id, made.key, made.headers)


@pytest.fixture
async def cast(make_user) -> Cast:  # type: ignore[no-untyped-def]
    return Cast(
        admin=_person(await make_user("adam@ops.example.com", "ops", ["admin"])),
        operator=_person(await make_user("olga@ops.example.com", "ops", ["operator"])),
        user=_person(await make_user("alice@acme.example.com", "acme")),
    )


@pytest.fixture
def as_admin(admin_api: str, cast: Cast) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=admin_api, headers=cast.admin.headers, timeout=30) as client:
        yield client


@pytest.fixture
def as_operator(admin_api: str, cast: Cast) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=admin_api, headers=cast.operator.headers, timeout=30) as client:
        yield client


Seed = Callable[..., Awaitable[Any]]


@dataclass
class Seeder:
    sessionmaker: async_sessionmaker[AsyncSession]

    async def base_model(self, model_id: str = "seeded-llama", **values: Any) -> CatalogEntry:
        entry = CatalogEntry(id=model_id, source=f"/models/{model_id}", max_seq_length=256, allowed=True,
                             download_status="ready", **values)  # fmt: skip
        return await self.add(entry)

    async def training_file(self, owner: Person, **values: Any) -> File:
        row = File(
            id=ids.file_id(), owner_id=owner.id, organization_id=owner.organization_id, filename="train.jsonl",
            purpose="fine-tune", bytes=values.pop("bytes", 4096), sha256="0" * 64,
            storage_name=f"{secrets.token_hex(16)}.jsonl", status="processed", data_format="chat",
            statistics={"examples": 40, "characters": 16000}, **values,
        )  # fmt: skip
        return await self.add(row)

    async def job(self, owner: Person, model: str, training_file: str, status: str = "queued", **values: Any) -> Job:
        if status == "running":
            values = {"lease_until": utcnow() + timedelta(hours=1), "heartbeat_at": utcnow(), "attempt": 1,
                      "worker": "elsewhere:1", "started_at": utcnow(), **values}  # fmt: skip
        row = Job(id=ids.job_id(), owner_id=owner.id, organization_id=owner.organization_id, model=model,
                  training_file=training_file, method="supervised", hyperparameters={}, seed=1, status=status,
                  **values)  # fmt: skip
        return await self.add(row)

    async def add(self, row: Any) -> Any:
        async with self.sessionmaker() as session:
            session.add(row)
            await session.commit()
        return row

    async def get(self, table: type[Any], row_id: Any) -> Any:
        async with self.sessionmaker() as session:
            return await session.get(table, row_id)


@pytest.fixture
def seed(sessionmaker: async_sessionmaker[AsyncSession]) -> Seeder:
    return Seeder(sessionmaker)


@pytest.fixture
async def gpu_queue_held() -> AsyncIterator[None]:
    """Workers stop taking from the gpu queue for the test, so what waits there can be looked at."""
    from app.core.celery_app import GPU_QUEUE, celery_app
    from app.fleet.inspect import once_more_on_a_stale_connection, worker_queues
    from app.jobs.queue_state import queue_keys

    def gpu_consumers() -> list[str]:
        return [host for host, queues in worker_queues(celery_app, 1.0).items() if GPU_QUEUE in queues]

    hosts = gpu_consumers()
    # A solo-pool worker busy with a task answers control commands only after it: ask until it has.
    deadline = time.monotonic() + 60
    while hosts and set(hosts) & set(gpu_consumers()):
        assert time.monotonic() < deadline, "the GPU worker did not stop consuming"
        once_more_on_a_stale_connection(celery_app.control.cancel_consumer)(
            GPU_QUEUE, destination=hosts, reply=True, timeout=5, limit=len(hosts)
        )

    def empty_gpu_queue() -> None:
        # What one test leaves there names rows the next one no longer has.
        with celery_app.connection_for_write() as connection:
            connection.default_channel.client.delete(*queue_keys(GPU_QUEUE))

    empty_gpu_queue()
    try:
        yield
    finally:
        empty_gpu_queue()
        if hosts:
            celery_app.control.add_consumer(GPU_QUEUE, routing_key=GPU_QUEUE, destination=hosts, reply=True,
                                            timeout=5, limit=len(hosts))  # fmt: skip
