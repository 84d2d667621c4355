"""Celery's control API, asked once per fleet view (blocking: callers run it in a thread).

A broadcast waits its whole timeout unless told how many replies to expect, so
the workers are pinged first and every later command is sent to exactly those
workers with `limit` set: an answering fleet costs one timeout, not six.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import redis.exceptions
from celery import Celery
from kombu.exceptions import OperationalError

from app.fleet.gpus import GPU_STATUS_COMMAND

logger = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def once_more_on_a_stale_connection(call: Callable[P, R]) -> Callable[P, R]:
    """After the broker restarted, the first command on a pooled connection finds its socket closed.

    The Redis client drops that socket as it fails, so the same command sent again reconnects; a
    broker that is really down fails the second time too, and the caller answers 503.
    """

    @functools.wraps(call)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return call(*args, **kwargs)
        except (redis.exceptions.ConnectionError, OperationalError) as error:
            logger.info("broker connection was stale (%s); asking once more", error)
            return call(*args, **kwargs)

    return wrapper


@dataclass
class ControlReplies:
    ping: dict[str, Any] = field(default_factory=dict)
    active: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reserved: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    registered: dict[str, list[str]] = field(default_factory=dict)
    active_queues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    gpu_status: dict[str, dict[str, Any]] = field(default_factory=dict)


@once_more_on_a_stale_connection
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


@once_more_on_a_stale_connection
def ping(app: Celery, timeout: float) -> dict[str, Any]:
    return app.control.inspect(timeout=timeout).ping() or {}


@once_more_on_a_stale_connection
def worker_queues(app: Celery, timeout: float) -> dict[str, list[str]]:
    """Worker -> the queue names it consumes."""
    answered = app.control.inspect(timeout=timeout).active_queues() or {}
    return {host: [queue["name"] for queue in queues] for host, queues in answered.items()}
