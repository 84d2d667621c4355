"""`/v1/models`: OpenAI's models API, plus downloads of adapters and merged weights."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, StreamingResponse

from app.api.deps import AuthzDep, PrincipalDep, ResourcesDep, SessionDep, SettingsDep
from app.artifacts.archive import read_manifest, safe_member, tar_stream
from app.audit.service import mark_resource
from app.catalog.tables import CatalogEntry
from app.core.config import Settings
from app.core.errors import NotFound
from app.finetuned import service
from app.inference.catalog import base_served, fine_tuned_served
from app.inference.lifespan import unload_deleted

router = APIRouter(prefix="/v1/models", tags=["models"])
ERRORS: dict[int | str, dict[str, Any]] = {code: {"description": "OpenAI error object"} for code in (400, 401, 404)}
ArtifactKind = Annotated[Literal["adapter", "merged", "model"], Query()]


def model_object(row: service.AnyModel, settings: Settings) -> dict[str, Any]:
    # `served`: /v1/chat/completions answers for it (an engine serves it, or its base and its adapter).
    if isinstance(row, CatalogEntry):
        return {"id": row.id, "object": "model", "created": int(row.created_at.timestamp()), "owned_by": row.owned_by,
                "served": base_served(settings, row.id)}  # fmt: skip
    if isinstance(row, service.CheckpointModel):
        # A checkpoint is a tar of weights to download, not something an engine loads.
        checkpoint, job = row.checkpoint, row.job
        return {
            "id": row.id,
            "object": "model",
            "created": int(checkpoint.created_at.timestamp()),
            "owned_by": job.organization_id,
            "parent": job.fine_tuned_model,
            "job_id": job.id,
            "checkpoint": {"id": checkpoint.id, "step_number": checkpoint.step_number},
            "served": False,
        }
    return {
        "id": row.id,
        "object": "model",
        "created": int(row.created_at.timestamp()),
        "owned_by": row.organization_id,
        "parent": row.base_model,
        "job_id": row.job_id,
        "registry": {"name": row.registry_name, "version": row.registry_version},
        "artifacts": [kind for kind, path in (("adapter", row.adapter_path), ("merged", row.merged_path)) if path],
        "served": fine_tuned_served(settings, row.id, row.base_model, row.adapter_path),
    }


@router.get("", responses=ERRORS)
async def list_models(
    session: SessionDep, authorizer: AuthzDep, principal: PrincipalDep, settings: SettingsDep
) -> dict[str, Any]:
    """Base models open for fine-tuning, and the fine-tuned models and checkpoint models the caller may see."""
    base, tuned, checkpoints = await service.list_visible(session, authorizer, principal)
    rows: list[service.AnyModel] = [*base, *tuned, *checkpoints]
    return {"object": "list", "data": [model_object(row, settings) for row in rows]}


@router.get("/{model:path}/files", responses=ERRORS)
async def list_model_files(session: SessionDep, authorizer: AuthzDep, principal: PrincipalDep, model: str,
                           kind: ArtifactKind = "adapter") -> dict[str, Any]:  # fmt: skip
    """The files of a fine-tuned model's adapter or merged weights, with sizes and SHA-256."""
    row = await service.get_fine_tuned(session, authorizer, principal, model, "download")
    return {"object": "list", "model": row.id, "kind": kind, "data": read_manifest(service.artifact_root(row, kind))}


@router.get("/{model:path}/download", responses={200: {"content": {"application/x-tar": {}}}, **ERRORS})
async def download_model(session: SessionDep, authorizer: AuthzDep, principal: PrincipalDep, model: str,
                         kind: ArtifactKind = "adapter") -> StreamingResponse:  # fmt: skip
    """A tar stream of the adapter or merged weights."""
    row = await service.get_fine_tuned(session, authorizer, principal, model, "download")
    root = service.artifact_root(row, kind)
    name = f"{row.job_id}-{kind}"
    return StreamingResponse(
        tar_stream(root, name),
        media_type="application/x-tar",
        headers={"Content-Disposition": f'attachment; filename="{name}.tar"'},
    )


@router.get("/{model:path}/file", responses={200: {"content": {"application/octet-stream": {}}}, **ERRORS})
async def download_model_file(session: SessionDep, authorizer: AuthzDep, principal: PrincipalDep, model: str,
                              path: str, kind: ArtifactKind = "adapter") -> FileResponse:  # fmt: skip
    """One file of the adapter or merged weights."""
    row = await service.get_fine_tuned(session, authorizer, principal, model, "download")
    member = safe_member(service.artifact_root(row, kind), path)
    if member is None:
        raise NotFound(f"No file '{path}' in the {kind} of '{model}'.", param="path")
    return FileResponse(member, media_type="application/octet-stream", filename=member.name)


@router.get("/{model:path}", responses=ERRORS)
async def retrieve_model(
    session: SessionDep, authorizer: AuthzDep, principal: PrincipalDep, settings: SettingsDep, model: str
) -> dict[str, Any]:
    """One model."""
    return model_object(await service.get_any(session, authorizer, principal, model), settings)


@router.delete("/{model:path}", responses=ERRORS)
async def delete_model(request: Request, session: SessionDep, authorizer: AuthzDep, principal: PrincipalDep,
                       resources: ResourcesDep, model: str) -> dict[str, Any]:  # fmt: skip
    """Delete a fine-tuned model (or a checkpoint model) and its weights, and unload it from the serving engine;
    its checkpoint models stay, listed here."""
    deleted, kept = await service.delete(session, authorizer, principal, model)
    mark_resource(request, "model", deleted)
    await unload_deleted(resources, deleted)
    # Beyond OpenAI's answer: the checkpoint models of the job, which are models of their own and stay.
    return {"id": deleted, "object": "model", "deleted": True, "checkpoint_models_kept": kept}
