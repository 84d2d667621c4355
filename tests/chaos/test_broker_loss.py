"""A worker that holds a message when the broker goes away reconnects instead of dying.

Celery 5.7.0's cleanup of the lost connection raised AttributeError in kombu's Redis channel
(app/core/broker_transport.py has the how): the worker process exited, and with the CPU worker
went beat, the reconcilers' clock. The worker here runs a task that is still running when
Valkey is killed and started again; it must still be the same process afterwards and take the
next message.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from app.devstack.processes import ManagedProcess, wait_until
from tests.brokers import celery_app_on, unread_database_url
from tests.chaos.broker_loss_app import QUEUE, TASK_SLEEP
from tests.chaos.conftest import outage_of

pytestmark = pytest.mark.slow
DB = 8  # the platform uses database 0


@pytest.fixture
def worker(stack, tmp_path: Path) -> Iterator[ManagedProcess]:  # type: ignore[no-untyped-def]
    celery = str(Path(sys.executable).parent / "celery")
    argv = [celery, "-A", "tests.chaos.broker_loss_app", "worker", "-Q", QUEUE, "--pool=prefork", "--concurrency=2",
            "--without-mingle", "--without-gossip", f"--hostname=broker-loss-{os.getpid()}@%h"]  # fmt: skip
    env = {**stack.env, "BROKER_LOSS_URL": unread_database_url(stack, DB), **_kombu_transport()}
    process = ManagedProcess("broker-loss-worker", argv, tmp_path / "worker.log", env=env).start()
    wait_until(lambda: b" ready." in process.log_path.read_bytes(), 120, "broker-loss worker", process)
    yield process
    process.stop()


def _kombu_transport() -> dict[str, str]:
    """BROKER_LOSS_KOMBU_TRANSPORT=1 in the test's environment runs kombu's own transport (to see it fail)."""
    return {"BROKER_LOSS_KOMBU_TRANSPORT": "1"} if os.environ.get("BROKER_LOSS_KOMBU_TRANSPORT") else {}


@pytest.fixture
def producer(stack) -> Celery:  # type: ignore[no-untyped-def]
    return celery_app_on(unread_database_url(stack, DB))


def _logged(process: ManagedProcess, text: str) -> bool:
    return text.encode() in process.log_path.read_bytes()


def _until(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("how", ["stop", "lose_data"])
def test_a_worker_holding_a_message_survives_the_broker_going_away(  # type: ignore[no-untyped-def]
    how, stack, worker: ManagedProcess, producer: Celery
) -> None:
    valkey = outage_of(stack, "EmbeddedValkey")
    producer.send_task(TASK_SLEEP, args=[6, "before"], queue=QUEUE, ignore_result=True)
    assert _until(lambda: _logged(worker, f"Task {TASK_SLEEP}["), 60), "the worker never took the task"
    {"stop": valkey.stop, "lose_data": valkey.lose_data}[how]()
    time.sleep(2)
    valkey.start()
    _until(lambda: _logged(worker, "slept before") or worker.exited(), 60)
    for _ in range(6):  # the broker may still be loading: publish again until a task is taken
        if worker.exited() or _logged(worker, "slept after"):
            break
        try:  # on a fresh connection: the pooled ones went with the broker
            with producer.connection_for_write() as fresh:
                producer.send_task(TASK_SLEEP, args=[0, "after"], queue=QUEUE, ignore_result=True, connection=fresh)
        except Exception:  # not up yet; the next round tries again
            pass
        _until(lambda: _logged(worker, "slept after") or worker.exited(), 15)
    log = worker.log_path.read_text(errors="replace")
    assert not worker.exited(), f"the worker died (exit {worker.returncode()}):\n{log[-4000:]}"
    assert "slept after" in log, f"no task taken after the broker came back:\n{log[-4000:]}"
