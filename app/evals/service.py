"""Evals and their runs on the user API: checked, authorized (Cerbos), stored, and runs queued after commit."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import Authorizer, Kind, Principal
from app.authz.resources import Resources
from app.core import ids
from app.core.celery_app import TASK_RUN_EVAL
from app.core.database import utcnow
from app.core.errors import BadRequest, Conflict, NotFound, PlatformError, not_found
from app.core.outbox import enqueue
from app.evals import graders, repository, sampling, sources, summary
from app.evals.schemas import check_metadata, check_name
from app.evals.tables import Eval, EvalOutputItem, EvalRun
from app.files import service as files
from app.finetuned import repository as fine_tuned
from app.inference import service as inference
from app.inference.gateway import ServingTarget

EVAL_FIELDS = ("name", "metadata", "data_source_config", "testing_criteria")
RUN_FIELDS = ("name", "metadata", "data_source")
LIVE = repository.LIVE_STATUSES
SAMPLE_REFERENCE = re.compile(r"\{\{\s*sample\.")


def _unknown_fields(body: dict[str, Any], allowed: Sequence[str]) -> None:
    for name in body:
        if name not in allowed:
            raise BadRequest(f"Unrecognized request argument supplied: {name}", param=name, code="unknown_parameter")


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", code="invalid_request")
    return body


async def _check_judges(resources: Resources, session: AsyncSession, principal: Principal, criteria: list[Any]) -> None:
    """Every judge model of score_model / label_model graders must be one the caller may generate with."""
    for model in sorted(graders.judge_models(criteria)):
        await _resolve(resources, session, principal, model, "testing_criteria")


async def _resolve(
    resources: Resources, session: AsyncSession, principal: Principal, model: str, param: str
) -> ServingTarget:
    """The model's serving target if the caller may use it; refusals name the request's field (`param`)."""
    try:
        return await inference.resolve(session, resources.authorizer, principal, resources.settings, model)
    except PlatformError as error:
        if error.param == "model":
            error.param = param
        raise


async def create_eval(resources: Resources, session: AsyncSession, principal: Principal, body: Any) -> Eval:
    body = _body(body)
    _unknown_fields(body, EVAL_FIELDS)
    for name in ("data_source_config", "testing_criteria"):
        if name not in body:
            raise BadRequest(f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
    config = sources.check_data_source_config(body["data_source_config"])
    criteria = graders.check_criteria(body["testing_criteria"])
    given_name, metadata = check_name(body.get("name")), check_metadata(body.get("metadata"))
    attrs = {"owner_id": principal.id, "organization_id": principal.organization_id}
    await resources.authorizer.require_create(principal, Kind.EVAL, attrs)
    await _check_judges(resources, session, principal, criteria)
    row = Eval(
        id=ids.eval_id(),
        owner_id=principal.id,
        organization_id=principal.organization_id,
        name=given_name or "Untitled eval",
        data_source_config=config,
        testing_criteria=criteria,
        metadata_=metadata,
    )
    session.add(row)
    await session.flush()
    return row


async def get_eval(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, eval_id: str, action: str = "read"
) -> Eval:
    return await authorizer.require_row(
        principal, Kind.EVAL, eval_id, await repository.get_eval(session, eval_id), action
    )


async def list_evals(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, after: str | None, limit: int, order: str
) -> tuple[Sequence[Eval], bool]:
    visible = await authorizer.list_filter(principal, Kind.EVAL, "read", Eval)
    return await repository.list_evals(session, visible, after, limit, descending=order == "desc")


async def update_eval(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, eval_id: str, body: Any
) -> Eval:
    body = _body(body)
    _unknown_fields(body, ("name", "metadata"))
    row = await get_eval(session, authorizer, principal, eval_id, "update")
    if "name" in body and body["name"] is not None:
        row.name = check_name(body["name"]) or row.name
    if "metadata" in body:
        row.metadata_ = check_metadata(body["metadata"])
    row.updated_at = utcnow()
    await session.flush()
    return row


async def delete_eval(session: AsyncSession, authorizer: Authorizer, principal: Principal, eval_id: str) -> Eval:
    """Delete an eval; its live runs are cancelled (their stored output items go with it)."""
    row = await get_eval(session, authorizer, principal, eval_id, "delete")
    now = utcnow()
    row.deleted_at = now
    for run in await repository.live_runs_of(session, eval_id):
        run.status, run.finished_at, run.lease_until = "canceled", now, None
    await session.flush()
    return row


# ---- runs -------------------------------------------------------------------------------------


async def _rows(
    session: AsyncSession,
    authorizer: Authorizer,
    principal: Principal,
    data_source: dict[str, Any],
    settings: Any,
    config: dict[str, Any],
) -> list[dict[str, Any]]:
    source = data_source["source"]
    if source["type"] == "file_content":
        if len(source["content"]) > settings.eval_max_items:
            raise BadRequest(
                f"A run holds at most {settings.eval_max_items} items.", param="data_source.source.content"
            )
        return sources.check_rows(source["content"], config, "data_source.source.content[{index}]")
    row = await files.get(session, authorizer, principal, source["id"])
    rows = sources.file_rows(files.storage_path(settings, row), settings.eval_max_items, row.id)
    if not rows:
        raise BadRequest(f"File {row.id} holds no items.", param="data_source.source.id", code="invalid_value")
    return sources.check_rows(rows, config, f"line {{line}} of file {row.id}")


async def create_run(
    resources: Resources, session: AsyncSession, principal: Principal, eval_id: str, body: Any
) -> EvalRun:
    body = _body(body)
    _unknown_fields(body, RUN_FIELDS)
    if "data_source" not in body:
        raise BadRequest(
            "Missing required parameter: 'data_source'.", param="data_source", code="missing_required_parameter"
        )
    data_source = sampling.check_data_source(body["data_source"])
    name, metadata = check_name(body.get("name")), check_metadata(body.get("metadata"))
    parent = await get_eval(session, resources.authorizer, principal, eval_id, "run")
    rows = await _rows(
        session, resources.authorizer, principal, data_source, resources.settings, parent.data_source_config
    )
    model = data_source.get("model")
    job_id = None
    if model is not None:
        target = await _resolve(resources, session, principal, model, "data_source.model")
        owner = await fine_tuned.get(session, target.model) if target.model.startswith("ft:") else None
        job_id = owner.job_id if owner else None
    elif any("sample" not in row for row in rows) and reads_sample(parent.testing_criteria):
        raise BadRequest(
            "A jsonl run grades the samples it is given: every row needs a 'sample' object, since "
            "the eval's testing criteria read {{sample.*}}.",
            param="data_source.source",
        )
    await _check_judges(resources, session, principal, parent.testing_criteria)
    run = EvalRun(
        id=ids.eval_run_id(),
        eval_id=parent.id,
        owner_id=principal.id,
        organization_id=principal.organization_id,
        name=name or (f"{model} on {parent.name}" if model else f"samples on {parent.name}"),
        model=model,
        data_source=data_source,
        metadata_=metadata,
        status="queued",
        total_items=len(rows),
        result_counts={"total": 0, "errored": 0, "failed": 0, "passed": 0},
        enqueued_at=utcnow(),
        fine_tuning_job_id=job_id,
    )
    session.add(run)
    await session.flush()
    enqueue(session, resources.sessionmaker, TASK_RUN_EVAL, [run.id])
    return run


async def get_run(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, eval_id: str, run_id: str, action: str = "read"
) -> EvalRun:
    await get_eval(session, authorizer, principal, eval_id)
    row = await repository.get_run(session, eval_id, run_id)
    return await authorizer.require_row(principal, Kind.EVAL_RUN, run_id, row, action)


async def list_runs(
    session: AsyncSession,
    authorizer: Authorizer,
    principal: Principal,
    eval_id: str,
    status: str | None,
    after: str | None,
    limit: int,
    order: str,
) -> tuple[Sequence[EvalRun], bool]:
    await get_eval(session, authorizer, principal, eval_id)
    visible = await authorizer.list_filter(principal, Kind.EVAL_RUN, "read", EvalRun)
    return await repository.list_runs(session, eval_id, visible, status, after, limit, descending=order == "desc")


async def cancel_run(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, eval_id: str, run_id: str
) -> EvalRun:
    """Stop a queued or running run: its worker stops after the batch in flight; stored items are kept."""
    run = await get_run(session, authorizer, principal, eval_id, run_id, "cancel")
    locked = await repository.lock_run(session, run.id)
    if locked.status not in LIVE:
        raise Conflict(
            f"The run {run_id} is {locked.status}; only a queued or in-progress run can be canceled.", param="run_id"
        )
    parent = await get_eval(session, authorizer, principal, eval_id)
    items = await repository.all_output_items(session, run.id)
    for name, value in summary.totals(parent.testing_criteria, items).items():
        setattr(locked, name, value)
    locked.status, locked.finished_at, locked.lease_until = "canceled", utcnow(), None
    await session.flush()
    return locked


async def delete_run(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, eval_id: str, run_id: str
) -> EvalRun:
    run = await get_run(session, authorizer, principal, eval_id, run_id, "delete")
    locked = await repository.lock_run(session, run.id)
    if locked.status in LIVE:
        locked.status, locked.finished_at, locked.lease_until = "canceled", utcnow(), None
    locked.deleted_at = utcnow()
    await session.flush()
    return locked


async def list_output_items(
    session: AsyncSession,
    authorizer: Authorizer,
    principal: Principal,
    eval_id: str,
    run_id: str,
    status: str | None,
    after: str | None,
    limit: int,
    order: str,
) -> tuple[Sequence[EvalOutputItem], bool]:
    run = await get_run(session, authorizer, principal, eval_id, run_id)
    return await repository.list_output_items(session, run.id, status, after, limit, descending=order == "desc")


async def get_output_item(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, eval_id: str, run_id: str, item_id: str
) -> EvalOutputItem:
    run = await get_run(session, authorizer, principal, eval_id, run_id)
    row = await repository.get_output_item(session, run.id, item_id)
    if row is None:
        raise hidden_item(item_id)
    return row


def hidden_item(item_id: str) -> NotFound:
    return not_found("output item", item_id, param="output_item_id")


def reads_sample(criteria: list[dict[str, Any]]) -> bool:
    """Whether any criterion's templates name the `sample` namespace."""
    return SAMPLE_REFERENCE.search(json.dumps(criteria)) is not None
