"""The user API as an SDK user meets it: OpenAI clients, rows seeded straight into the database, a strict API.

Seeding writes the same rows (and files on disk) the platform writes, so a test
about listing or authorization does not have to train or even validate a job.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import ids
from app.core.config import Settings
from app.devstack.processes import free_port, wait_until
from app.files.tables import File
from app.files.validation import StreamingValidator, ValidationLimits
from app.finetuned.tables import FineTunedModel
from app.jobs.tables import Checkpoint, Job, JobEvent
from tests.files.corpus import CORPUS_LIMITS
from tests.jobs.datasets import chat_lines, jsonl

# The strict API: the corpus' line limits, and an upload limit small enough to pass cheaply.
STRICT_UPLOAD_BYTES = 1024 * 1024


def sdk(base_url: str, key: str) -> OpenAI:
    """The official client exactly as a user would build it (no retries, so every error surfaces)."""
    return OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=60)


def listing(directory: Path) -> set[str]:
    """Every name under a directory, hidden partial uploads included."""
    return {str(path.relative_to(directory)) for path in directory.rglob("*")} if directory.exists() else set()


@pytest.fixture(scope="session")
def strict_api(stack) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A second user API with the bad-file corpus' limits and a 1 MiB upload limit."""
    port = free_port()
    env = {
        **stack.env,
        "MAX_LINE_BYTES": str(CORPUS_LIMITS.max_line_bytes),
        "MAX_LINES": str(CORPUS_LIMITS.max_lines),
        "MAX_JSON_DEPTH": str(CORPUS_LIMITS.max_json_depth),
        "MAX_UPLOAD_BYTES": str(STRICT_UPLOAD_BYTES),
    }
    argv = [sys.executable, "-m", "uvicorn", "app.api.user_app:app", "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log"]  # fmt: skip
    process = stack.spawn("user-api-strict", argv, env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/health", timeout=3).status_code == 200, 90, "strict user API", process)
        yield url
    finally:
        process.stop()
        stack.processes.remove(process)


EVAL_ITEM_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
EVAL_CRITERION = {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}",
                  "reference": "{{item.answer}}", "operation": "eq"}  # fmt: skip
EVAL_ROW = {"item": {"answer": "Paris"}, "sample": {"output_text": "Paris"}}


@dataclass
class Seeder:
    """Rows (and their files on disk) written as the platform writes them."""

    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    scratch: Path

    async def _add(self, *rows: Any) -> None:
        async with self.sessionmaker() as session:
            session.add_all(rows)
            await session.commit()

    async def file(self, owner: Any, content: bytes | None = None, filename: str = "seeded.jsonl") -> str:
        content = content if content is not None else jsonl(chat_lines(10))
        validator = StreamingValidator(ValidationLimits())
        validator.feed(content)
        report = validator.finish()
        assert report.ok, report.errors
        storage_name = f"{uuid.uuid4().hex}.jsonl"
        self.settings.datasets_path.mkdir(parents=True, exist_ok=True)
        (self.settings.datasets_path / storage_name).write_bytes(content)
        row = File(id=ids.file_id(), owner_id=owner.id, organization_id=owner.organization_id, filename=filename,
                   purpose="fine-tune", bytes=len(content), sha256="0" * 64, storage_name=storage_name,
                   status="processed", data_format=report.data_format, statistics=report.statistics,
                   index_status="pending")  # fmt: skip
        await self._add(row)
        return row.id

    async def job(
        self, owner: Any, model: str, training_file: str, status: str = "queued",
        metadata: dict[str, str] | None = None,
    ) -> str:  # fmt: skip
        row = Job(id=ids.job_id(), owner_id=owner.id, organization_id=owner.organization_id, model=model,
                  training_file=training_file, method="supervised", hyperparameters={}, seed=1,
                  metadata_=metadata, status=status, attempt=0)  # fmt: skip
        event = JobEvent(id=ids.event_id(), job_id=row.id, message=f"Seeded as {status}")
        await self._add(row)
        await self._add(event)
        return row.id

    async def checkpoint(self, job_id: str, step: int) -> str:
        directory = self.scratch / f"{job_id}-step-{step}"
        directory.mkdir(parents=True)
        (directory / "adapter_model.safetensors").write_bytes(b"weights of step %d" % step)
        row = Checkpoint(id=ids.checkpoint_id(), job_id=job_id, attempt=0, step_number=step, path=str(directory),
                         metrics={"train_loss": 1.0 / step})  # fmt: skip
        await self._add(row)
        return row.id

    async def eval(self, owner: Any) -> str:
        from app.evals.criteria import check_criteria
        from app.evals.sources import check_data_source_config
        from app.evals.tables import Eval

        config = check_data_source_config({"type": "custom", "item_schema": EVAL_ITEM_SCHEMA})
        criteria = check_criteria([EVAL_CRITERION])
        row = Eval(id=ids.eval_id(), owner_id=owner.id, organization_id=owner.organization_id, name="seeded",
                   data_source_config=config, testing_criteria=criteria)  # fmt: skip
        await self._add(row)
        return row.id

    async def eval_run(self, owner: Any, eval_id: str, status: str = "queued") -> str:
        """A run of `eval_id` with one graded item (a queued one is never picked up: no evals worker here)."""
        from app.evals.tables import EvalOutputItem, EvalRun

        data_source = {"type": "jsonl", "source": {"type": "file_content", "content": [EVAL_ROW]}}
        run = EvalRun(id=ids.eval_run_id(), eval_id=eval_id, owner_id=owner.id, organization_id=owner.organization_id,
                      name="seeded", data_source=data_source, status=status, total_items=1)  # fmt: skip
        item = EvalOutputItem(id=ids.output_item_id(), run_id=run.id, eval_id=eval_id, datasource_item_id=0,
                              datasource_item=EVAL_ROW["item"], status="pass", results=[], sample={},
                              attempt=1)  # fmt: skip
        await self._add(run)
        await self._add(item)
        return run.id

    async def output_item(self, run_id: str) -> str:
        from sqlalchemy import select

        from app.evals.tables import EvalOutputItem

        async with self.sessionmaker() as session:
            return str(await session.scalar(select(EvalOutputItem.id).where(EvalOutputItem.run_id == run_id)))

    async def model(self, owner: Any, job_id: str, base: str) -> str:
        adapter = self.scratch / f"{job_id}-adapter"
        adapter.mkdir(parents=True)
        (adapter / "adapter_config.json").write_text('{"r": 8}')
        name = f"ft:{base}:seeded::{job_id}"
        await self._add(FineTunedModel(id=name, job_id=job_id, owner_id=owner.id,
                                       organization_id=owner.organization_id, base_model=base,
                                       adapter_path=str(adapter)))  # fmt: skip
        return name


@pytest.fixture
def seed(sessionmaker, settings, tmp_path: Path) -> Seeder:  # type: ignore[no-untyped-def]
    return Seeder(sessionmaker, settings, tmp_path)


@pytest.fixture(autouse=True)
def _jobs_stay_queued(no_gpu_worker: None) -> None:
    """These tests drive jobs through validation and queueing only; no GPU worker may take them."""
