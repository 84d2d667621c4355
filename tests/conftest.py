"""The test harness: the same embedded servers as `make run`, started once per run.

Servers whose URL is configured in the environment are used instead. Every
test gets a clean database (all tables truncated before it runs). The APIs and
Celery workers run as real processes, started on first use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

# The vLLM engine fixture (`serving`), shared by the serving tests and the console's playground.
pytest_plugins = ["tests.serving"]
REPO_ROOT = Path(__file__).resolve().parents[1]

# Worker settings that make the lifecycle observable in seconds rather than minutes.
TEST_SETTINGS = {
    "JOB_LEASE_SECONDS": "8",
    "JOB_CONTROL_POLL_SECONDS": "0.5",
    "RECONCILE_INTERVAL_SECONDS": "2",
    "OUTBOX_RELAY_AFTER_SECONDS": "2",
    "CHECKPOINT_EVERY_STEPS": "4",
    "KEEP_CHECKPOINTS": "2",
    "MAX_JOB_ATTEMPTS": "4",
    "LOG_LEVEL": "INFO",
    # One thread per training process: on a shared 2-core machine more threads only contend.
    "OMP_NUM_THREADS": "1",
}


def _ensure_cerbos() -> None:
    from app.devstack.cerbos import CerbosNotInstalledError, cerbos_binary

    try:
        cerbos_binary()
    except CerbosNotInstalledError:
        subprocess.run([str(REPO_ROOT / "scripts" / "install-cerbos.sh")], check=True, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def stack() -> Iterator[object]:
    from app.core.config import get_settings
    from app.core.migrations import upgrade_head
    from app.devstack.stack import Ports, Stack, configured_urls

    _ensure_cerbos()
    # Not under pytest's base temp: every pytest session that starts resets /tmp/pytest-of-<user> to mode 700,
    # and the embedded PostgreSQL runs as another user, so a second session (a developer running one test
    # while the suite runs) would cut this session's database off its own data directory.
    data_dir = Path(tempfile.mkdtemp(prefix="finetune-test-"))
    platform = Stack(data_dir=data_dir, ports=Ports.free(), environment="test", configured=configured_urls())
    try:
        env = platform.start_servers()
        env.update(TEST_SETTINGS)
        platform.env = env
        os.environ.update(env)
        get_settings.cache_clear()
        _point_celery_at(env["REDIS_URL"])
        upgrade_head(env["DATABASE_URL"])
        yield platform
    finally:
        platform.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _point_celery_at(redis_url: str) -> None:
    """Test modules may have imported the Celery app before the servers existed."""
    from app.core.celery_app import celery_app

    celery_app.conf.broker_url = redis_url
    celery_app.conf.result_backend = redis_url


@pytest.fixture(scope="session")
def settings(stack: object):  # type: ignore[no-untyped-def]
    from app.core.config import get_settings

    return get_settings()


@pytest.fixture(scope="session")
async def sessionmaker(stack: object) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(os.environ["DATABASE_URL"], poolclass=NullPool)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


@pytest.fixture(autouse=True)
def clean_database(request: pytest.FixtureRequest) -> None:
    """Truncate every table before each test that uses the platform."""
    if "stack" not in request.fixturenames and not _uses_platform(request):
        return
    request.getfixturevalue("stack")
    from sqlalchemy import create_engine

    from app.tables import Base

    names = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    engine = create_engine(os.environ["DATABASE_URL"].replace("+asyncpg", "+psycopg2"), poolclass=NullPool)
    # A worker may still be finishing the previous test's task: its transaction can deadlock with
    # TRUNCATE's exclusive locks, and PostgreSQL then aborts one side. Try again a few times.
    for attempt in range(5):
        try:
            with engine.begin() as connection:
                connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            break
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.5)
    engine.dispose()


def _uses_platform(request: pytest.FixtureRequest) -> bool:
    platform_fixtures = {"user_api", "admin_api", "gpu_worker", "cpu_worker", "sessionmaker", "make_user"}
    return bool(platform_fixtures & set(request.fixturenames))


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from app.training.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture
async def tiny_model(sessionmaker: async_sessionmaker[AsyncSession], tiny_model_path: Path) -> str:
    """The tiny local model, registered in the catalog as `tiny-llama`."""
    from app.catalog.tables import CatalogEntry

    async with sessionmaker() as session:
        session.add(
            CatalogEntry(
                id="tiny-llama",
                source=str(tiny_model_path),
                max_seq_length=256,
                parameter_count=None,
                allowed=True,
                download_status="ready",
            )
        )
        await session.commit()
    return "tiny-llama"


def _wait_http(url: str, process: object, timeout: float = 60) -> None:
    from app.devstack.processes import wait_until

    wait_until(lambda: httpx.get(url, timeout=3).status_code == 200, timeout, url, process)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def user_api(stack) -> str:  # type: ignore[no-untyped-def]
    process = stack.start_api("user")
    _wait_http(f"http://127.0.0.1:{stack.ports.user_api}/health", process)
    return f"http://127.0.0.1:{stack.ports.user_api}"


@pytest.fixture(scope="session")
def admin_api(stack) -> str:  # type: ignore[no-untyped-def]
    process = stack.start_api("admin")
    _wait_http(f"http://127.0.0.1:{stack.ports.admin_api}/health", process)
    return f"http://127.0.0.1:{stack.ports.admin_api}"


def _wait_worker(stack, process, name: str, timeout: float = 240) -> None:  # type: ignore[no-untyped-def]
    from app.core.celery_app import celery_app
    from app.devstack.processes import wait_until

    def answered() -> bool:
        replies = celery_app.control.inspect(timeout=3.0).ping() or {}
        return any(host.startswith(name) for host in replies)

    wait_until(answered, timeout, f"{name} worker", process)


class WorkerHandle:
    """A Celery worker process that tests may kill (as a crash would) and start again."""

    def __init__(self, stack, queue: str) -> None:  # type: ignore[no-untyped-def]
        self.stack, self.queue = stack, queue
        self.process = self._start()

    def _start(self):  # type: ignore[no-untyped-def]
        process = self.stack.start_worker(self.queue)
        _wait_worker(self.stack, process, self.queue)
        return process

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def kill(self) -> None:
        self.process.kill()

    def ensure_running(self) -> None:
        if self.process.exited():
            self.stack.processes.remove(self.process)
            self.process = self._start()


@pytest.fixture(scope="session")
def cpu_worker(stack) -> WorkerHandle:  # type: ignore[no-untyped-def]
    return WorkerHandle(stack, "cpu")


@pytest.fixture(scope="session")
def gpu_worker_process(stack) -> WorkerHandle:  # type: ignore[no-untyped-def]
    return WorkerHandle(stack, "gpu")


@pytest.fixture
def gpu_worker(gpu_worker_process: WorkerHandle) -> WorkerHandle:
    """The GPU-queue worker (CPU only here), restarted if an earlier test killed it."""
    gpu_worker_process.ensure_running()
    return gpu_worker_process


@pytest.fixture
def no_gpu_worker(stack) -> None:  # type: ignore[no-untyped-def]
    """Jobs stay queued: stop a GPU worker an earlier test started (`gpu_worker` restarts it on demand)."""
    for process in stack.processes:
        if process.name == "worker-gpu" and not process.exited():
            process.stop()


@dataclass
class TestUser:
    id: str
    organization_id: str
    key: str
    roles: list[str]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
async def make_user(sessionmaker: async_sessionmaker[AsyncSession], settings):  # type: ignore[no-untyped-def]
    """Create a user (and its organization when new) with an API key."""
    from sqlalchemy import select

    from app.users import service
    from app.users.tables import Organization

    async def make(email: str, organization: str = "acme", roles: list[str] | None = None) -> TestUser:
        async with sessionmaker() as session:
            org = await session.scalar(select(Organization).where(Organization.name == organization))
            if org is None:
                org = await service.create_organization(session, organization)
            user = await service.create_user(session, org.id, email, roles=roles or ["user"])
            issued = await service.issue_key(session, settings, user.id, "test")
            await session.commit()
            return TestUser(user.id, org.id, issued.secret, list(user.roles))

    return make


def pytest_configure(config: pytest.Config) -> None:
    # The platform's processes find the package from the repository root.
    os.environ.setdefault("PYTHONPATH", str(REPO_ROOT))
    sys.path.insert(0, str(REPO_ROOT))
