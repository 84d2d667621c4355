"""Fixtures of the fault tests: a user with an SDK client, the embedded servers, a model too big to load."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from openai import OpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.chaos.faults import WorkerSupervisor
from tests.faultproxy import FaultProxy
from tests.jobs.datasets import chat_lines, jsonl

# An MLP this wide needs 2 TiB per layer: no host can hold it, and the allocation is refused at once
# (nothing is really taken from the shared machine).
UNLOADABLE_INTERMEDIATE_SIZE = 2**33


@pytest.fixture
async def chaos_user(make_user):  # type: ignore[no-untyped-def]
    return await make_user("chaos@example.com")


@pytest.fixture
def client(user_api: str, chaos_user: Any) -> OpenAI:
    return OpenAI(base_url=f"{user_api}/v1", api_key=chaos_user.key, max_retries=0, timeout=60)


@pytest.fixture(scope="session")
def worker_supervisor(gpu_worker_process: Any, cpu_worker_process: Any) -> Iterator[WorkerSupervisor]:
    supervisor = WorkerSupervisor({"gpu": gpu_worker_process, "cpu": cpu_worker_process})
    supervisor.start()
    yield supervisor
    supervisor.stop()


class Outage:
    """How a test takes a server away: stop (clean shutdown), kill (crash), lose_data (crash, and its data gone).

    An embedded server is stopped or killed for real; a configured one (not ours to restart) is cut off
    by the proxy the platform reaches it through, which closes every connection with a FIN or a reset.
    """

    def __init__(self, server: Any = None, proxy: FaultProxy | None = None) -> None:
        self.server, self.proxy = server, proxy
        self.target = proxy if proxy is not None else server

    def stop(self) -> None:
        self.target.stop()

    def kill(self) -> None:
        self.target.kill()

    def start(self) -> None:
        self.target.start()

    def lose_data(self) -> None:
        self.kill()
        if self.proxy is None:
            shutil.rmtree(self.server.data_dir)
            return
        # A configured broker: its data is what the harness treats as disposable already (it deletes
        # the queues before every test).
        assert self.proxy.upstream_url and self.proxy.upstream_url.startswith("redis"), "only the broker loses data"
        client = redis.Redis.from_url(self.proxy.upstream_url)
        client.flushdb()
        client.close()


def outage_of(stack: Any, kind: str) -> Outage:
    """The embedded server of that class, or the proxy in front of the configured one (not ours to restart)."""
    setting = {"EmbeddedValkey": "REDIS_URL", "EmbeddedPostgres": "DATABASE_URL"}[kind]
    if setting in stack.proxies:
        return Outage(proxy=stack.proxies[setting])
    return Outage(server=next(server for server in stack.servers if type(server).__name__ == kind))


def start_short_job(client: OpenAI, model: str, examples: int = 10) -> str:
    """One epoch, batch 1: a job that finishes in seconds once it runs."""
    training = client.files.create(file=("short.jsonl", jsonl(chat_lines(examples))), purpose="fine-tune")
    hyperparameters = {"n_epochs": 1, "batch_size": 1, "packing": False, "lora_r": 4, "gradient_accumulation_steps": 1}
    job = client.fine_tuning.jobs.create(
        model=model,
        training_file=training.id,
        extra_body={"method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}},
    )
    return job.id


@pytest.fixture(scope="session")
def unloadable_model_path(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's files, but a config whose MLP no host could allocate (its weights are left out)."""
    from safetensors.torch import load_file, save_file

    target = tmp_path_factory.mktemp("models") / "unloadable-llama"
    shutil.copytree(tiny_model_path, target)
    config = json.loads((target / "config.json").read_text())
    config["intermediate_size"] = UNLOADABLE_INTERMEDIATE_SIZE
    (target / "config.json").write_text(json.dumps(config))
    weights = {name: tensor for name, tensor in load_file(tiny_model_path / "model.safetensors").items()
               if ".mlp." not in name}  # fmt: skip
    save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
    return target


@pytest.fixture
async def unloadable_model(sessionmaker: async_sessionmaker[AsyncSession], unloadable_model_path: Path) -> str:
    from app.catalog.tables import CatalogEntry

    async with sessionmaker() as session:
        session.add(CatalogEntry(id="unloadable-llama", source=str(unloadable_model_path), max_seq_length=256,
                                 parameter_count=None, allowed=True, download_status="ready"))  # fmt: skip
        await session.commit()
    return "unloadable-llama"
