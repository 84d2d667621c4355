"""An eval run on a worker of the `evals` queue: items in batches through the serving engine, graded, kept.

The run is claimed with a fenced attempt (like a fine-tuning job). Each batch's output items are
stored in one transaction with the lease renewal, `ON CONFLICT DO NOTHING` on (run, item): a worker
killed mid-run leaves the stored batches as they are, and the next attempt (the message delivered
again, or the reconciler's re-publish after the lease lapses) resumes at the first item not stored.
What the killed worker had generated for its unfinished batch was never stored, so that batch is
sent again; no stored item is generated or graded twice. Totals are recomputed from the stored
items, so they never count an item twice either.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from app.core import ids
from app.core.database import utcnow
from app.core.errors import PlatformError, ServiceUnavailable
from app.core.worker_context import WorkerContext
from app.evals import comparison, graders, repository, sampling, sources, summary, tracking
from app.evals.tables import Eval, EvalRun
from app.evals.templates import TemplateError
from app.files import repository as files
from app.inference import service as inference
from app.inference import wire
from app.inference.gateway import InferenceGateway, ServingTarget
from app.jobs import events
from app.jobs.tables import JobEvent

logger = logging.getLogger(__name__)
# How long a batch waits for an engine that does not answer (restarting) before the run fails.
ENGINE_WAIT_SECONDS = 300.0
ENGINE_RETRY_SECONDS = 3.0


class RunLost(Exception):
    """This attempt no longer holds the run (cancelled, deleted, or taken over): it stops, writing nothing."""


class EngineDown(Exception):
    """The engine did not answer: the batch is tried again (nothing of it was stored)."""


class Models:
    """The serving targets a run uses (the sampled model and the judges), resolved once per attempt."""

    def __init__(self, context: WorkerContext, gateway: InferenceGateway) -> None:
        self.context, self.gateway = context, gateway
        self._targets: dict[str, ServingTarget] = {}

    async def target(self, model: str) -> ServingTarget:
        if model not in self._targets:
            async with self.context.sessionmaker() as session:
                self._targets[model] = await inference.target_for(session, self.context.settings, model)
        return self._targets[model]

    async def complete(self, model: str, body: dict[str, Any]) -> tuple[dict[str, Any], int, int]:
        request = wire.checked_request(body, self.context.settings.inference_max_choices)
        try:
            completion, usage = await self.gateway.complete(await self.target(model), request)
        except ServiceUnavailable as error:
            raise EngineDown(error.message) from error
        return completion, usage.prompt_tokens, usage.completion_tokens

    async def judge(self, model: str, messages: list[dict[str, str]], params: dict[str, Any]) -> tuple[str, int, int]:
        try:
            completion, prompt, generated = await self.complete(model, {"model": model, "messages": messages, **params})
        except PlatformError as error:  # the judge refused this prompt: this item's grade is an error
            raise graders.GraderError(f"the judge model {model} answered: {error.message}") from error
        return sampling.sample_of(completion, model)["output_text"], prompt, generated


async def run_eval(context: WorkerContext, run_id: str) -> str:
    settings = context.settings

    async def take() -> int | None:
        async with context.sessionmaker() as session:
            attempt = await repository.claim(session, run_id, timedelta(seconds=settings.eval_lease_seconds))
            await session.commit()
            return attempt

    attempt = await context.write(take, f"eval run {run_id}: claim")
    if attempt is None:
        return "not claimed"  # finished, cancelled, deleted, or held by a live attempt
    gateway = InferenceGateway(settings)
    try:
        return await _run(context, gateway, run_id, attempt)
    except Exception as error:
        logger.exception("eval run %s failed on attempt %d", run_id, attempt)
        await _fail(context, run_id, attempt, error)
        return "failed"
    finally:
        await gateway.close()


async def _run(context: WorkerContext, gateway: InferenceGateway, run_id: str, attempt: int) -> str:
    settings = context.settings
    async with context.sessionmaker() as session:
        run = await repository.run_by_id(session, run_id)
        assert run is not None
        parent = await session.get(Eval, run.eval_id)
        assert parent is not None
        rows = await _load_rows(context, run, parent)
        stored = await repository.stored_item_indexes(session, run_id)
    models = Models(context, gateway)
    todo = [index for index in range(len(rows)) if index not in stored]
    for start in range(0, len(todo), settings.eval_batch_size):
        batch = todo[start : start + settings.eval_batch_size]
        work = functools.partial(_grade_batch, models, run, parent, rows, batch, attempt)
        try:
            graded = await _with_engine(context, run_id, attempt, work)
        except RunLost:
            return "stopped"
        if not await _store(context, run_id, attempt, graded):
            return "stopped"  # cancelled, deleted, or another attempt took the run over
    return await _finish(context, run_id, attempt)


async def _load_rows(context: WorkerContext, run: EvalRun, parent: Eval) -> list[dict[str, Any]]:
    source = run.data_source["source"]
    if source["type"] == "file_content":
        return list(source["content"])
    async with context.sessionmaker() as session:
        row = await files.get_live(session, source["id"])
    if row is None:
        raise PlatformError(f"The file {source['id']} was deleted before the run read it.", code="file_not_found")
    path = context.settings.datasets_path / row.storage_name
    rows = sources.file_rows(path, context.settings.eval_max_items, row.id)
    return sources.check_rows(rows, parent.data_source_config, f"line {{line}} of file {row.id}")


async def _with_engine(
    context: WorkerContext, run_id: str, attempt: int, work: Callable[[], Awaitable[list[dict[str, Any]]]]
) -> list[dict[str, Any]]:
    """The batch, tried again while the engine does not answer (renewing the lease meanwhile)."""
    waited = 0.0
    while True:
        try:
            return await work()
        except EngineDown:
            if waited >= ENGINE_WAIT_SECONDS:
                raise
            logger.warning(
                "eval run %s: the engine is not answering; batch tried again in %ss", run_id, ENGINE_RETRY_SECONDS
            )
            await asyncio.sleep(ENGINE_RETRY_SECONDS)
            waited += ENGINE_RETRY_SECONDS
            if not await _renew(context, run_id, attempt):
                raise RunLost from None


async def _grade_batch(
    models: Models, run: EvalRun, parent: Eval, rows: list[dict[str, Any]], batch: list[int], attempt: int
) -> list[dict[str, Any]]:
    limit = asyncio.Semaphore(models.context.settings.eval_concurrency)

    async def one(index: int) -> dict[str, Any]:
        async with limit:
            return await _grade_item(models, run, parent, rows[index], index, attempt)

    return list(await asyncio.gather(*(one(index) for index in batch)))


async def _grade_item(
    models: Models, run: EvalRun, parent: Eval, row: dict[str, Any], index: int, attempt: int
) -> dict[str, Any]:
    item = row["item"]
    sample, namespace, error = _given_sample(row)
    if run.data_source["type"] == "completions":
        sample, namespace, error = await _generate(models, run.data_source, item)
    if error is not None:
        status, results = "error", list[dict[str, Any]]()
    else:
        status, results = await graders.grade_all(parent.testing_criteria, item, namespace, models.judge)
    return {
        "id": ids.output_item_id(),
        "run_id": run.id,
        "eval_id": run.eval_id,
        "datasource_item_id": index,
        "datasource_item": item,
        "status": status,
        "results": results,
        "sample": sample,
        "attempt": attempt,
        "created_at": utcnow(),
        "error": error,
    }


def _given_sample(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None, str | None]:
    given = row.get("sample")
    text = sources.text_of((given or {}).get("output_text", ""))
    sample = {
        "input": [],
        "output": [{"role": "assistant", "content": text}] if given else [],
        "finish_reason": (given or {}).get("finish_reason"),
        "model": (given or {}).get("model"),
        "usage": {"total_tokens": 0, "completion_tokens": 0, "prompt_tokens": 0, "cached_tokens": 0},
        "error": None,
        "temperature": None,
        "max_completion_tokens": None,
        "top_p": None,
        "seed": None,
    }
    return sample, given, None


async def _generate(
    models: Models, data_source: dict[str, Any], item: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None, str | None]:
    params = sampling.effective_params(data_source)
    sample: dict[str, Any] = {
        "input": [],
        "output": [],
        "finish_reason": None,
        "model": data_source["model"],
        "usage": {"total_tokens": 0, "completion_tokens": 0, "prompt_tokens": 0, "cached_tokens": 0},
        "error": None,
        "temperature": params["temperature"],
        "max_completion_tokens": params.get("max_completion_tokens"),
        "top_p": params["top_p"],
        "seed": params["seed"],
    }
    try:
        body = sampling.request_for(data_source, item)
        sample["input"] = body["messages"]
        completion, prompt, generated = await models.complete(data_source["model"], body)
    except TemplateError as error:
        sample["error"] = {"code": "invalid_template", "message": str(error)}
        return sample, None, str(error)
    except PlatformError as error:  # the engine refused this item (e.g. too long): an errored item
        sample["error"] = {"code": error.code or "engine_error", "message": error.message}
        return sample, None, error.message
    namespace = sampling.sample_of(completion, data_source["model"])
    sample["output"] = [{"role": "assistant", "content": namespace["output_text"]}]
    sample["finish_reason"] = namespace["finish_reason"]
    sample["usage"] = {
        "total_tokens": prompt + generated,
        "completion_tokens": generated,
        "prompt_tokens": prompt,
        "cached_tokens": 0,
    }
    return sample, namespace, None


async def _renew(context: WorkerContext, run_id: str, attempt: int) -> bool:
    lease = utcnow() + timedelta(seconds=context.settings.eval_lease_seconds)

    async def write() -> bool:
        async with context.sessionmaker() as session:
            held = await repository.update_fenced(session, run_id, attempt, lease_until=lease)
            await session.commit()
            return held

    return await context.write(write, f"eval run {run_id}: lease")


async def _store(context: WorkerContext, run_id: str, attempt: int, graded: list[dict[str, Any]]) -> bool:
    """One batch's items and the renewed lease, in one transaction; False when this attempt lost the run."""
    lease = utcnow() + timedelta(seconds=context.settings.eval_lease_seconds)

    async def write() -> bool:
        async with context.sessionmaker() as session:
            # The fenced UPDATE locks the run row: a cancel (which locks it too) is ordered with this batch.
            if not await repository.update_fenced(session, run_id, attempt, lease_until=lease):
                await session.rollback()
                return False
            await repository.add_output_items(session, graded)
            counts = await repository.count_by_status(session, run_id)
            await repository.update_fenced(session, run_id, attempt, result_counts=counts)
            await session.commit()
            return True

    return await context.write(write, f"eval run {run_id}: batch")


async def _finish(context: WorkerContext, run_id: str, attempt: int) -> str:
    async def write() -> list[JobEvent] | None:
        async with context.sessionmaker() as session:
            run = await repository.run_by_id(session, run_id)
            assert run is not None
            parent = await session.get(Eval, run.eval_id)
            assert parent is not None
            totals = summary.totals(parent.testing_criteria, await repository.all_output_items(session, run_id))
            done = {"status": "completed", "finished_at": utcnow(), "lease_until": None, **totals}
            if not await repository.update_fenced(session, run_id, attempt, **done):
                await session.rollback()
                return None
            said = await comparison.run_finished(session, run_id)
            await session.commit()
            return said

    said = await context.write(write, f"eval run {run_id}: completed")
    if said is None:
        return "stopped"
    for event in said:
        await events.publish(context.redis, event)
    await tracking.log_run(context, run_id)
    return "completed"


async def _fail(context: WorkerContext, run_id: str, attempt: int, error: Exception) -> None:
    message = error.message if isinstance(error, PlatformError) else "The run stopped on an internal error."
    code = (error.code if isinstance(error, PlatformError) else None) or "internal_error"

    async def write() -> list[JobEvent]:
        async with context.sessionmaker() as session:
            run = await repository.run_by_id(session, run_id)
            parent = await session.get(Eval, run.eval_id) if run else None
            items = await repository.all_output_items(session, run_id)
            totals = summary.totals(parent.testing_criteria, items) if parent else {}
            failed = {
                "status": "failed",
                "finished_at": utcnow(),
                "lease_until": None,
                **totals,
                "error": {"code": code, "message": message},
            }
            said = []
            if await repository.update_fenced(session, run_id, attempt, **failed):
                said = await comparison.run_finished(session, run_id)
            await session.commit()
            return said

    for event in await context.write(write, f"eval run {run_id}: failed"):
        await events.publish(context.redis, event)
