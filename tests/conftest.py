"""The test harness: the same embedded servers as `make run`, started once per run.

Servers whose URL is configured in the environment are used instead (PostgreSQL and Valkey
through a `FaultProxy`, so the outage tests can take them away too). Every test that uses the
platform starts from a clean one: all tables truncated, the broker's queues and idempotency
keys deleted, the stored datasets, job directories and vectors of the last test removed, and,
for tests that train or use the registry, MLflow's runs and registered models deleted. The
APIs and Celery workers run as real processes, started on first use, and started again by the
next test that needs one when an earlier test killed it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from tests.faultproxy import FaultProxy

# The vLLM engine fixture (`serving`), shared by the serving tests and the console's playground.
pytest_plugins = ["tests.serving"]
REPO_ROOT = Path(__file__).resolve().parents[1]
# Configured servers the outage tests take away through a proxy (they are not ours to restart).
PROXIED = ("DATABASE_URL", "REDIS_URL")

# Worker settings that make the lifecycle observable in seconds rather than minutes.
TEST_SETTINGS = {
    "JOB_LEASE_SECONDS": "8",
    "JOB_HEARTBEAT_SECONDS": "1",
    "JOB_CONTROL_POLL_SECONDS": "0.5",
    "RECONCILE_INTERVAL_SECONDS": "2",
    "OUTBOX_RELAY_AFTER_SECONDS": "2",
    "REPUBLISH_AFTER_SECONDS": "6",
    "MLFLOW_REGISTER_RETRY_SECONDS": "4",
    "CHECKPOINT_EVERY_STEPS": "4",
    "KEEP_CHECKPOINTS": "2",
    "MAX_JOB_ATTEMPTS": "4",
    "LOG_LEVEL": "INFO",
    # The suite trains, serves and decides on 2 shared cores at once: a decision may wait behind them.
    "CERBOS_TIMEOUT_SECONDS": "15",
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
    configured = configured_urls()
    proxies = {name: FaultProxy.in_front_of(configured[name]) for name in PROXIED if name in configured}
    configured.update({name: url for name, (_, url) in proxies.items()})
    platform = Stack(data_dir=data_dir, ports=Ports.free(), environment="test", configured=configured)
    platform.proxies = {name: proxy for name, (proxy, _) in proxies.items()}  # type: ignore[attr-defined]
    _LOGS.directory = platform.log_dir
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
        for proxy, _ in proxies.values():
            proxy.stop()
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
def clean_platform(request: pytest.FixtureRequest) -> None:
    """Before each test that uses the platform: nothing an earlier test left behind is seen by this one."""
    if "stack" not in request.fixturenames and not _uses_platform(request):
        return
    request.getfixturevalue("stack")
    from sqlalchemy import create_engine

    from app.core.config import get_settings

    engine = create_engine(os.environ["DATABASE_URL"].replace("+asyncpg", "+psycopg2"), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            file_ids = list(connection.scalars(text("SELECT id FROM files")))
        _forget_vectors(file_ids)
        _truncate_tables(engine)
    finally:
        engine.dispose()
    _empty_broker_queues()
    settings = get_settings()
    for folder in (settings.datasets_path, settings.models_path, settings.logs_path):
        shutil.rmtree(folder, ignore_errors=True)
    if MLFLOW_FIXTURES & set(request.fixturenames):
        _empty_mlflow()


def _truncate_tables(engine: Any) -> None:
    from app.tables import Base

    names = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    # A worker may still be finishing the previous test's task: its transaction can deadlock with
    # TRUNCATE's exclusive locks, and PostgreSQL then aborts one side. Try again a few times.
    for attempt in range(5):
        try:
            with engine.begin() as connection:
                connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.5)


def _forget_vectors(file_ids: list[str]) -> None:
    """The indexed examples of the last test's files (vectors are keyed by file, not truncated with it)."""
    if not file_ids:
        return
    from app.core.config import get_settings
    from app.vectors.connect import open_point_store

    store = open_point_store(get_settings(), os.environ.get("VECTOR_SERVICE_URL"))
    try:
        for file_id in file_ids:
            store.delete_file(file_id)
    finally:
        store.close()


def _empty_broker_queues() -> None:
    """Messages queued or delivered-unacknowledged, and remembered idempotent answers: all name old rows."""
    import redis

    from app.core.celery_app import CPU_QUEUE, EVALS_QUEUE, GPU_QUEUE
    from app.jobs.queue_state import UNACKED_HASH, queue_keys

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        queues = [*queue_keys(GPU_QUEUE), *queue_keys(CPU_QUEUE), *queue_keys(EVALS_QUEUE)]
        keys = [*queues, UNACKED_HASH, f"{UNACKED_HASH}_index"]
        keys += list(client.scan_iter(match="idempotency:*"))
        client.delete(*keys)
    finally:
        client.close()


def _empty_mlflow() -> None:
    """Registered models (and their versions) and runs: a test counting versions counts only its own."""
    from mlflow import MlflowClient

    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    for model in client.search_registered_models():
        client.delete_registered_model(model.name)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    for run in client.search_runs(experiments, max_results=1000) if experiments else []:
        client.delete_run(run.info.run_id)


def _uses_platform(request: pytest.FixtureRequest) -> bool:
    platform_fixtures = {"user_api", "admin_api", "gpu_worker", "cpu_worker", "sessionmaker", "make_user"}
    return bool(platform_fixtures & set(request.fixturenames))


# Tests that can leave or read MLflow runs and registry versions (training, the admin registry).
MLFLOW_FIXTURES = {"gpu_worker", "admin_api", "mlflow"}


@pytest.fixture
def mlflow(stack: object) -> Any:
    """A client of the harness's MLflow, emptied of runs and registered models before the test."""
    from app.core.mlflow_clients import mlflow_client

    return mlflow_client(os.environ["MLFLOW_TRACKING_URI"])


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


def _wait_worker(process, name: str, log_from: int, timeout: float = 240) -> None:  # type: ignore[no-untyped-def]
    """Until the worker says it is ready in its log, or answers a ping.

    Its log, first: a solo-pool worker that takes a task the moment it is up (a re-queued job, say)
    answers no control command until that task ends, minutes later.
    """
    from app.core.celery_app import celery_app
    from app.devstack.processes import wait_until

    def answered() -> bool:
        with process.log_path.open("rb") as log:
            log.seek(log_from)
            if re.search(rb"@\S+ ready\.", log.read()):
                return True
        replies = celery_app.control.inspect(timeout=3.0).ping() or {}
        return any(host.startswith(name) for host in replies)

    wait_until(answered, timeout, f"{name} worker", process)


class WorkerHandle:
    """A Celery worker process that tests may kill (as a crash would) and start again."""

    def __init__(self, stack, queue: str, node: str = "", extra_env: dict[str, str] | None = None) -> None:  # type: ignore[no-untyped-def]
        self.stack, self.queue, self.node, self.extra_env = stack, queue, node, extra_env
        self.process = self._start()

    def _start(self):  # type: ignore[no-untyped-def]
        log = self.stack.log_dir / f"worker-{self.queue}{self.node}.log"
        log_from = log.stat().st_size if log.exists() else 0
        process = self.stack.start_worker(self.queue, self.extra_env, node=self.node)
        _wait_worker(process, f"{self.queue}{self.node}-", log_from)
        return process

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def kill(self) -> None:
        self.process.kill()

    def stop(self) -> None:
        self.process.stop()
        if self.process in self.stack.processes:
            self.stack.processes.remove(self.process)

    def ensure_running(self) -> None:
        if self.process.exited():
            if self.process in self.stack.processes:
                self.stack.processes.remove(self.process)
            self.process = self._start()


@pytest.fixture(scope="session")
def cpu_worker_process(stack) -> WorkerHandle:  # type: ignore[no-untyped-def]
    return WorkerHandle(stack, "cpu")


@pytest.fixture
def cpu_worker(cpu_worker_process: WorkerHandle) -> WorkerHandle:
    """The CPU-queue worker (validation, token counts, the reconciler's beat), restarted if it died."""
    cpu_worker_process.ensure_running()
    return cpu_worker_process


# Eval runs in batches of 4 with an 8 s lease: a killed evals worker's run is resumed within seconds.
EVALS_SETTINGS = {"EVAL_BATCH_SIZE": "4", "EVAL_LEASE_SECONDS": "8", "EVAL_COMPARISON_MAX_TOKENS": "24"}


@pytest.fixture(scope="session")
def evals_worker_process(stack, serving) -> WorkerHandle:  # type: ignore[no-untyped-def]
    engines = json.dumps({"tiny-llama": serving.engine_url})
    return WorkerHandle(stack, "evals", extra_env={"INFERENCE_ENGINES": engines, **EVALS_SETTINGS})


@pytest.fixture
def evals_worker(evals_worker_process: WorkerHandle, cpu_worker: WorkerHandle) -> WorkerHandle:
    """The `evals`-queue worker, pointed at the serving engine (not waited for), restarted if it died.
    The CPU worker comes with it: its beat runs the eval-run reconciler."""
    evals_worker_process.ensure_running()
    return evals_worker_process


@pytest.fixture(scope="session")
def gpu_worker_mlflow(stack) -> Iterator[FaultProxy]:  # type: ignore[no-untyped-def]
    """The GPU workers reach MLflow through this proxy: a test can make MLflow slow or unreachable for them."""
    proxy, _ = FaultProxy.in_front_of(stack.env["MLFLOW_TRACKING_URI"])
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def gpu_worker_process(stack, gpu_worker_mlflow: FaultProxy) -> WorkerHandle:  # type: ignore[no-untyped-def]
    mlflow = {
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{gpu_worker_mlflow.port}",
        # MLflow's client retries a failed call for minutes by default; here the worker's own retry
        # (MLFLOW_REGISTER_RETRY_SECONDS) decides, so a test that cuts MLflow off sees the outcome in seconds.
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    }
    return WorkerHandle(stack, "gpu", extra_env=mlflow)


@pytest.fixture
def gpu_worker(gpu_worker_process: WorkerHandle, gpu_worker_mlflow: FaultProxy) -> Iterator[WorkerHandle]:
    """The GPU-queue worker (CPU only here), restarted if an earlier test killed it; MLflow as it should be."""
    gpu_worker_process.ensure_running()
    yield gpu_worker_process
    gpu_worker_mlflow.delay_seconds = 0.0
    if not gpu_worker_mlflow.listening:
        gpu_worker_mlflow.start()


@pytest.fixture
def second_gpu_worker(stack, gpu_worker: WorkerHandle) -> Iterator[WorkerHandle]:  # type: ignore[no-untyped-def]
    """Another GPU worker beside the first, for the test only: two workers race for what the queue holds."""
    handle = WorkerHandle(stack, "gpu", node="2", extra_env=gpu_worker.extra_env)
    try:
        yield handle
    finally:
        handle.stop()


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


class _PlatformLogs:
    """Where each service log of the stack stood when the running test began: a failed test's report
    ends with what each process wrote during it (a CI failure is otherwise all that is left of them)."""

    LINES = 40

    def __init__(self) -> None:
        self.directory: Path | None = None
        self.offsets: dict[Path, int] = {}

    def mark(self) -> None:
        logs = sorted(self.directory.glob("*.log")) if self.directory else []
        self.offsets = {log: log.stat().st_size for log in logs}

    def sections(self) -> list[tuple[str, str]]:
        found = []
        for log in sorted(self.directory.glob("*.log")) if self.directory else []:
            with log.open("rb") as file:
                file.seek(self.offsets.get(log, 0))
                written = file.read().decode(errors="replace").splitlines()[-self.LINES :]
            if written:
                found.append((f"{log.name}, its last {len(written)} lines of this test", "\n".join(written)))
        return found


_LOGS = _PlatformLogs()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _LOGS.mark()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.failed:
        report.sections.extend(_LOGS.sections())
    return report


def pytest_configure(config: pytest.Config) -> None:
    # The platform's processes find the package from the repository root.
    os.environ.setdefault("PYTHONPATH", str(REPO_ROOT))
    sys.path.insert(0, str(REPO_ROOT))
