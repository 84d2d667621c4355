"""A worker of the platform's Celery configuration with one slow task, for tests/chaos/test_broker_loss.py.

`celery -A tests.chaos.broker_loss_app worker -Q broker-loss`: the broker is BROKER_LOSS_URL (a database
of the test Valkey that the platform's workers do not read), the transport is the platform's.
"""

from __future__ import annotations

import os
import time

from app.core.celery_app import create_celery_app

QUEUE = "broker-loss"
TASK_SLEEP = "broker_loss.sleep"

app = create_celery_app()
app.conf.update(broker_url=os.environ.get("BROKER_LOSS_URL"), result_backend=None, include=[], beat_schedule={})
if os.environ.get("BROKER_LOSS_KOMBU_TRANSPORT"):  # kombu's own Redis transport, to see the failure
    app.conf.broker_transport = None


@app.task(name=TASK_SLEEP, acks_late=True)
def sleep(seconds: float, tag: str) -> str:
    time.sleep(seconds)
    print(f"slept {tag}", flush=True)
    return tag
