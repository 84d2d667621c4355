"""More user API processes of the session's stack, for what must hold in every process at once."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import httpx
import pytest

from app.devstack.processes import free_port, wait_until


@pytest.fixture(scope="session")
def spawn_user_api(stack) -> Iterator[Callable[..., str]]:  # type: ignore[no-untyped-def]
    """Start another user API process (with environment overrides); all are stopped at the end."""
    started = []

    def spawn(name: str, **env: str) -> str:
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", "app.api.user_app:app", "--host", "127.0.0.1", "--port",
                str(port), "--no-access-log"]  # fmt: skip
        process = stack.spawn(name, argv, {**stack.env, **env})
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{url}/health", timeout=3).status_code == 200, 120, name, process)
        return url

    yield spawn
    for process in started:
        process.stop()
        stack.processes.remove(process)


@pytest.fixture(scope="session")
def second_user_api(spawn_user_api: Callable[..., str]) -> str:
    return spawn_user_api("user-api-second")
