"""`/v1/evals`: OpenAI's Evals API (evals, runs, output items) over the platform's served models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse

from app.api.deps import AuthzDep, PrincipalDep, ResourcesDep, SessionDep
from app.audit.service import mark_resource
from app.core.pagination import page
from app.evals import service
from app.evals.schemas import eval_object, output_item_object, run_object
from app.evals.tables import EvalRun

router = APIRouter(prefix="/v1/evals", tags=["evals"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": "OpenAI error object"} for code in (400, 401, 403, 404, 409, 429, 503)
}
Limit = Annotated[int, Query(ge=1, le=100)]
Order = Literal["asc", "desc"]
JsonBody = Annotated[dict[str, Any], Body()]


def _report_url(request: Request, run: EvalRun) -> str:
    """The console's page of the run (the console is served at / of the user API)."""
    return f"{str(request.base_url).rstrip('/')}/#/evals/{run.eval_id}/runs/{run.id}"


@router.post("", status_code=201, responses=ERRORS)
async def create_eval(
    request: Request, resources: ResourcesDep, session: SessionDep, principal: PrincipalDep, body: JsonBody
) -> JSONResponse:
    """An eval: its data source config (the items' schema) and testing criteria (graders)."""
    row = await service.create_eval(resources, session, principal, body)
    mark_resource(request, "eval", row.id)
    return JSONResponse(eval_object(row), status_code=201)


@router.get("", responses=ERRORS)
async def list_evals(
    session: SessionDep,
    authorizer: AuthzDep,
    principal: PrincipalDep,
    after: str | None = None,
    limit: Limit = 20,
    order: Order = "asc",
    order_by: Literal["created_at"] = "created_at",
) -> dict[str, Any]:
    """Evals the caller may see (their organization's), oldest first unless `order=desc` (by creation only)."""
    rows, has_more = await service.list_evals(session, authorizer, principal, after, limit, order)
    return page([eval_object(row) for row in rows], has_more)


@router.get("/{eval_id}", responses=ERRORS)
async def retrieve_eval(session: SessionDep, authorizer: AuthzDep, principal: PrincipalDep, eval_id: str) -> Any:
    return eval_object(await service.get_eval(session, authorizer, principal, eval_id))


@router.post("/{eval_id}", responses=ERRORS)
async def update_eval(
    request: Request, session: SessionDep, authorizer: AuthzDep, principal: PrincipalDep, eval_id: str, body: JsonBody
) -> Any:
    """Rename an eval or replace its metadata (its criteria and data source config are fixed)."""
    row = await service.update_eval(session, authorizer, principal, eval_id, body)
    mark_resource(request, "eval", row.id)
    return eval_object(row)


@router.delete("/{eval_id}", responses=ERRORS)
async def delete_eval(
    request: Request, session: SessionDep, authorizer: AuthzDep, principal: PrincipalDep, eval_id: str
) -> Any:
    row = await service.delete_eval(session, authorizer, principal, eval_id)
    mark_resource(request, "eval", row.id)
    return {"object": "eval.deleted", "deleted": True, "eval_id": row.id}


@router.post("/{eval_id}/runs", status_code=201, responses=ERRORS)
async def create_run(
    request: Request,
    resources: ResourcesDep,
    session: SessionDep,
    principal: PrincipalDep,
    eval_id: str,
    body: JsonBody,
) -> JSONResponse:
    """Queue a run: the items of its data source are sampled (completions) or taken as given (jsonl), then graded."""
    run = await service.create_run(resources, session, principal, eval_id, body)
    mark_resource(request, "eval_run", run.id)
    return JSONResponse(run_object(run, _report_url(request, run)), status_code=201)


@router.get("/{eval_id}/runs", responses=ERRORS)
async def list_runs(
    request: Request,
    session: SessionDep,
    authorizer: AuthzDep,
    principal: PrincipalDep,
    eval_id: str,
    after: str | None = None,
    limit: Limit = 20,
    order: Order = "asc",
    status: Literal["queued", "in_progress", "completed", "canceled", "failed"] | None = None,
) -> dict[str, Any]:
    rows, has_more = await service.list_runs(session, authorizer, principal, eval_id, status, after, limit, order)
    return page([run_object(row, _report_url(request, row)) for row in rows], has_more)


@router.get("/{eval_id}/runs/{run_id}", responses=ERRORS)
async def retrieve_run(
    request: Request, session: SessionDep, authorizer: AuthzDep, principal: PrincipalDep, eval_id: str, run_id: str
) -> Any:
    run = await service.get_run(session, authorizer, principal, eval_id, run_id)
    return run_object(run, _report_url(request, run))


@router.post("/{eval_id}/runs/{run_id}/cancel", responses=ERRORS)  # the SDK's `runs.cancel`
@router.post("/{eval_id}/runs/{run_id}", responses=ERRORS)  # the same, as OpenAI's OpenAPI document names it
async def cancel_run(
    request: Request, session: SessionDep, authorizer: AuthzDep, principal: PrincipalDep, eval_id: str, run_id: str
) -> Any:
    """Cancel a queued or in-progress run (OpenAI's cancel is this POST); the items graded so far are kept."""
    run = await service.cancel_run(session, authorizer, principal, eval_id, run_id)
    mark_resource(request, "eval_run", run.id)
    return run_object(run, _report_url(request, run))


@router.delete("/{eval_id}/runs/{run_id}", responses=ERRORS)
async def delete_run(
    request: Request, session: SessionDep, authorizer: AuthzDep, principal: PrincipalDep, eval_id: str, run_id: str
) -> Any:
    run = await service.delete_run(session, authorizer, principal, eval_id, run_id)
    mark_resource(request, "eval_run", run.id)
    return {"object": "eval.run.deleted", "deleted": True, "run_id": run.id}


@router.get("/{eval_id}/runs/{run_id}/output_items", responses=ERRORS)
async def list_output_items(
    session: SessionDep,
    authorizer: AuthzDep,
    principal: PrincipalDep,
    eval_id: str,
    run_id: str,
    after: str | None = None,
    limit: Limit = 20,
    order: Order = "asc",
    status: Literal["fail", "pass"] | None = None,
) -> dict[str, Any]:
    """The run's graded items with their grades (`status=fail` for the failed ones)."""
    rows, has_more = await service.list_output_items(
        session, authorizer, principal, eval_id, run_id, status, after, limit, order
    )
    return page([output_item_object(row) for row in rows], has_more)


@router.get("/{eval_id}/runs/{run_id}/output_items/{output_item_id}", responses=ERRORS)
async def retrieve_output_item(
    session: SessionDep, authorizer: AuthzDep, principal: PrincipalDep, eval_id: str, run_id: str, output_item_id: str
) -> Any:
    row = await service.get_output_item(session, authorizer, principal, eval_id, run_id, output_item_id)
    return output_item_object(row)
