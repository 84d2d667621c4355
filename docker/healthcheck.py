#!/usr/bin/env python3
"""Container healthchecks for images that have Python but neither curl nor wget.

    healthcheck http URL   exit 0 when URL answers 2xx within the timeout
    healthcheck worker     exit 0 when a Celery worker process runs here and the broker
                           (REDIS_URL) answers PING

The worker check does not use `celery inspect ping`: a worker with --pool=solo runs a
job in its main loop and cannot answer remote-control commands until the job ends, so a
busy, healthy GPU worker would be reported unhealthy for hours.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

TIMEOUT_SECONDS = 4.0


def check_http(url: str) -> str | None:
    """Return why `url` is unhealthy, or None when it answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            status = int(response.status)
    except urllib.error.HTTPError as error:
        return f"{url} answered {error.code}"
    except OSError as error:
        return f"{url} unreachable: {error}"
    return None if 200 <= status < 300 else f"{url} answered {status}"


def _process_arguments(proc_root: Path) -> Iterator[list[str]]:
    for cmdline in proc_root.glob("[0-9]*/cmdline"):
        try:
            raw = cmdline.read_bytes()
        except OSError:  # the process ended while we looked
            continue
        if raw:
            yield [part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")]


def celery_worker_running(proc_root: Path = Path("/proc")) -> bool:
    """True when some process was started as `celery ... worker ...`."""
    for arguments in _process_arguments(proc_root):
        names = [Path(argument).name for argument in arguments[:2]]
        if "celery" in names and "worker" in arguments:
            return True
    return False


def check_broker(redis_url: str) -> str | None:
    """Return why the broker is unhealthy, or None when it answers PING."""
    import redis  # the worker image has it (celery[redis]); the http check needs no import

    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=TIMEOUT_SECONDS)
        client.ping()
    except redis.RedisError as error:
        return f"broker did not answer PING: {error}"
    return None


def check_worker() -> str | None:
    if not celery_worker_running():
        return "no celery worker process is running"
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        return "REDIS_URL is not set"
    return check_broker(redis_url)


def main(arguments: list[str]) -> int:
    if len(arguments) == 2 and arguments[0] == "http":
        problem = check_http(arguments[1])
    elif arguments == ["worker"]:
        problem = check_worker()
    else:
        print("usage: healthcheck http URL | healthcheck worker", file=sys.stderr)
        return 2
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
