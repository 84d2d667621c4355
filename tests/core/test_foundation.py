"""The foundation: migrations, health and readiness, the error shape, request ids, fail-fast settings."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app.devstack.processes import free_port


def _alembic(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "alembic", *args], capture_output=True, text=True, env=env)


@pytest.fixture
def empty_database(stack: object) -> Iterator[str]:
    """A database of its own on the harness's server: no worker, API or reconciler writes to it meanwhile."""
    url = make_url(os.environ["DATABASE_URL"])
    name = f"migrations_{secrets.token_hex(4)}"
    server = create_engine(url.set(drivername="postgresql+psycopg2"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        server.dispose()


def test_migrations_up_down_and_up_without_drift(empty_database: str) -> None:
    for step in (("upgrade", "head"), ("downgrade", "base"), ("upgrade", "head")):
        result = _alembic(empty_database, *step)
        assert result.returncode == 0, result.stderr
    checked = _alembic(empty_database, "check")
    assert checked.returncode == 0, checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr


async def test_clean_database_between_tests(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        count = await session.scalar(text("SELECT count(*) FROM users"))
    assert count == 0


def test_health_and_ready(user_api: str, admin_api: str) -> None:
    for base in (user_api, admin_api):
        assert httpx.get(f"{base}/health").json() == {"status": "ok"}
        ready = httpx.get(f"{base}/ready", timeout=10)
        body = ready.json()
        assert ready.status_code == 200, body
        assert {check["name"] for check in body["checks"]} == {"database", "redis", "cerbos", "mlflow", "qdrant"}
        assert all(check["latency_ms"] >= 0 for check in body["checks"])


def test_errors_have_openai_shape_and_request_id(user_api: str) -> None:
    response = httpx.get(f"{user_api}/v1/files", headers={"x-request-id": "req-test-123"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "req-test-123"
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["code"] == "invalid_api_key"
    missing = httpx.get(f"{user_api}/no/such/route")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"


def test_ready_names_what_is_down(stack) -> None:  # type: ignore[no-untyped-def]
    """An API pointed at a Redis that is not there answers 503 on /ready naming `redis`."""
    port = free_port()
    env = {**stack.env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    process = stack.spawn(
        "user-api-broken-redis", [sys.executable, "-m", "uvicorn", "app.api.user_app:app", "--port", str(port)], env
    )
    try:
        from app.devstack.processes import wait_until

        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200, 60, "api", process)
        response = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=15)
        assert response.status_code == 503
        assert response.json()["down"] == ["redis"]
        assert response.headers["retry-after"]
    finally:
        process.stop()
        stack.processes.remove(process)


@pytest.mark.parametrize("environment", ["production"])
def test_production_refuses_missing_and_placeholder_secrets(environment: str) -> None:
    from pydantic import ValidationError

    from app.core.config import Settings

    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(environment=environment, database_url=None, api_key_pepper="x" * 40, _env_file=None)
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(
            environment=environment,
            database_url="postgresql+asyncpg://u:changeme@db/x",
            api_key_pepper="y" * 40,
            _env_file=None,
        )
    ok = Settings(
        environment=environment,
        database_url="postgresql+asyncpg://u:s3cr3t-Long@db/x",
        api_key_pepper="z" * 40,
        _env_file=None,
    )
    assert ok.database_url is not None


def test_a_heartbeat_slower_than_its_lease_is_refused_at_start() -> None:
    from pydantic import ValidationError

    from app.core.config import Settings

    with pytest.raises(ValidationError, match="JOB_HEARTBEAT_SECONDS"):
        Settings(environment="test", job_lease_seconds=8, job_heartbeat_seconds=10, _env_file=None)
    assert (
        Settings(environment="test", job_lease_seconds=8, job_heartbeat_seconds=1, _env_file=None).job_heartbeat_seconds
        == 1
    )


def test_database_down_fails_fast_naming_the_setting() -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/finetune"
    result = subprocess.run(
        [sys.executable, "-m", "app.devstack", "--check-only"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DATABASE_URL": url},
    )
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr + result.stdout
