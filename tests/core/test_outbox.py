"""The outbox publishes what a transaction committed, and nothing of one that rolled back.

`session_scope` is what both APIs' `SessionDep` runs around a handler: its after-commit hooks
(the outbox's publication) must run only once the commit went through. The broker is the
harness's Valkey; no GPU worker runs, so whatever is published stays in the queue to be seen.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.core.celery_app import GPU_QUEUE, TASK_RUN_FINETUNE
from app.core.database import session_scope
from app.core.outbox import OutboxMessage, enqueue
from app.jobs.queue_state import message_task_and_args, queue_keys
from app.users.tables import Organization

scope = asynccontextmanager(session_scope)


class HandlerFailed(Exception):
    """What a handler raising after it enqueued looks like to the session dependency."""


async def _published(settings: Any, marker: str) -> int:
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        found = 0
        for key in queue_keys(GPU_QUEUE):
            for raw in await client.lrange(key, 0, -1):
                found += message_task_and_args(raw) == (TASK_RUN_FINETUNE, [marker])
        return found
    finally:
        await client.aclose()


async def _stored(sessionmaker: Any, marker: str) -> int:
    async with sessionmaker() as session:
        query = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.args == [marker])
        return int(await session.scalar(query) or 0)


async def test_only_a_committed_transaction_publishes(sessionmaker, settings, no_gpu_worker) -> None:  # type: ignore[no-untyped-def]
    failed, refused, committed = (f"ftjob-{name}-{secrets.token_hex(4)}" for name in ("failed", "refused", "ok"))

    with pytest.raises(HandlerFailed):
        async with scope(sessionmaker) as session:
            enqueue(session, sessionmaker, TASK_RUN_FINETUNE, [failed])
            await session.flush()  # the row reached the database inside the transaction
            raise HandlerFailed

    with pytest.raises(IntegrityError):  # the commit itself is refused: a duplicate organization name
        async with scope(sessionmaker) as session:
            enqueue(session, sessionmaker, TASK_RUN_FINETUNE, [refused])
            session.add_all([Organization(id=f"org-{n}", name="twice") for n in range(2)])

    async with scope(sessionmaker) as session:
        enqueue(session, sessionmaker, TASK_RUN_FINETUNE, [committed])

    counts = {marker: (await _stored(sessionmaker, marker), await _published(settings, marker))
              for marker in (failed, refused, committed)}  # fmt: skip
    assert counts == {failed: (0, 0), refused: (0, 0), committed: (1, 1)}, counts


# A publish to a broker that is down, in a process of its own (the app reads its broker at import).
DOWN_BROKER_PUBLISH = """
from app.core.outbox import OutboxMessage, publish
try:
    publish(OutboxMessage(task_name="jobs.run_finetune", args=["x"], queue="gpu"))
except Exception as error:
    print(type(error).__module__, type(error).__name__, str(error).splitlines()[0])
"""


def publish_in_a_process_of_its_own(port: int, **env: str) -> subprocess.CompletedProcess[str]:
    """DOWN_BROKER_PUBLISH against a broker at `port`; a process that has not ended in 90 s raises."""
    environ = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{port}/0", **env}
    command = [sys.executable, "-c", DOWN_BROKER_PUBLISH]
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=90)


def test_a_publish_to_a_broker_that_is_down_fails_on_the_broker_itself() -> None:
    """Not after Celery's result store has retried 20 times a second: the API's answer waits for it.

    A publish asks the result backend (Valkey too) to expect the task's result unless told to
    ignore it; the outbox never reads those results, and while the broker was down that wait
    held each create request about 20 s (and its outbox row's lock) before the publish failed.
    """
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = publish_in_a_process_of_its_own(port)
    said = result.stdout.strip()
    assert said.startswith("kombu.exceptions OperationalError") and "onnection refused" in said, (
        said,
        result.stderr[-2000:],
    )


def test_a_publish_to_a_broker_that_never_answers_fails_instead_of_hanging() -> None:
    """A broker that accepts the connection and then says nothing (paused, half-partitioned).

    Without a socket timeout on the broker connection the publish waits forever: the request that
    committed the job never answers, and the reconciler's relay holds the row's lock for as long.
    """
    held: list[socket.socket] = []
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()

        def accept_and_say_nothing() -> None:
            while True:
                try:
                    held.append(silent.accept()[0])
                except OSError:  # closed: the test is over
                    return

        threading.Thread(target=accept_and_say_nothing, daemon=True).start()
        try:
            result = publish_in_a_process_of_its_own(silent.getsockname()[1], BROKER_SOCKET_TIMEOUT_SECONDS="2")
        finally:
            for connection in held:
                connection.close()
    said = result.stdout.strip()
    assert said.startswith(("kombu.exceptions OperationalError", "redis.exceptions TimeoutError")), (
        said,
        result.stderr[-2000:],
    )
    assert "imeout" in said, said
