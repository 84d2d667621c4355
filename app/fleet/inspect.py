"""Celery's control API, asked once per fleet view (blocking: callers run it in a thread).

A broadcast waits its whole timeout unless told how many replies to expect, so
the workers are pinged first and every later command is sent to exactly those
workers with `limit` set: an answering fleet costs one timeout, not six.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from celery import Celery

from app.fleet.gpus import GPU_STATUS_COMMAND


@dataclass
class ControlReplies:
    ping: dict[str, Any] = field(default_factory=dict)
    active: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reserved: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    registered: dict[str, list[str]] = field(default_factory=dict)
    active_queues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    gpu_status: dict[str, dict[str, Any]] = field(default_factory=dict)


def ask_workers(app: Celery, timeout: float) -> ControlReplies:
    replies = ControlReplies(ping=app.control.inspect(timeout=timeout).ping() or {})
    hosts = sorted(replies.ping)
    if not hosts:
        return replies
    inspect = app.control.inspect(destination=hosts, timeout=timeout, limit=len(hosts))
    replies.active = inspect.active() or {}
    replies.reserved = inspect.reserved() or {}
    replies.registered = inspect.registered() or {}
    replies.active_queues = inspect.active_queues() or {}
    replies.stats = inspect.stats() or {}
    answers = (
        app.control.broadcast(GPU_STATUS_COMMAND, destination=hosts, reply=True, timeout=timeout, limit=len(hosts))
        or []
    )
    replies.gpu_status = {host: reply for answer in answers for host, reply in answer.items()}
    return replies


def ping(app: Celery, timeout: float) -> dict[str, Any]:
    return app.control.inspect(timeout=timeout).ping() or {}


def worker_queues(app: Celery, timeout: float) -> dict[str, list[str]]:
    """Worker -> the queue names it consumes."""
    answered = app.control.inspect(timeout=timeout).active_queues() or {}
    return {host: [queue["name"] for queue in queues] for host, queues in answered.items()}
