"""`/admin/v1/models` (fine-tuned models with their registry versions) and `/admin/v1/registry` (aliases).

Model ids (`ft:...`) and registry names may contain `/`: both are path parameters,
and the longer routes are declared before the plain ones.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from app.admin.access import allow
from app.admin.errors import ERRORS
from app.admin.registry import service
from app.admin.registry.schemas import ALIAS_PATTERN, AliasSet, FineTunedModelObject, RegistryModelObject
from app.api.deps import AuthzDep, PrincipalDep, SessionDep, SettingsDep
from app.audit.service import mark_resource
from app.authz import Kind
from app.core.pagination import page

router = APIRouter(prefix="/admin/v1", tags=["admin: models"], responses=ERRORS)

Alias = Annotated[str, Path(pattern=ALIAS_PATTERN)]


@router.get("/models", dependencies=[allow(Kind.REGISTRY_MODEL, "list")])
async def list_models(
    session: SessionDep,
    settings: SettingsDep,
    user_id: str | None = None,
    organization_id: str | None = None,
    base_model: str | None = None,
    include_deleted: bool = False,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Fine-tuned models of every tenant, each with its MLflow registered model, versions and aliases."""
    rows, has_more = await service.list_models(
        session, settings.mlflow_tracking_uri, owner_id=user_id, organization_id=organization_id,
        base_model=base_model, include_deleted=include_deleted, after=after, limit=limit,
    )  # fmt: skip
    return page([row.model_dump() for row in rows], has_more)


@router.get(
    "/models/{model_id:path}", response_model=FineTunedModelObject, dependencies=[allow(Kind.REGISTRY_MODEL, "read")]
)
async def retrieve_model(session: SessionDep, settings: SettingsDep, model_id: str) -> FineTunedModelObject:
    """One fine-tuned model with its registry versions and aliases."""
    return await service.get_model(session, settings.mlflow_tracking_uri, model_id)


@router.delete("/models/{model_id:path}", dependencies=[allow(Kind.REGISTRY_MODEL, "delete")])
async def delete_model(request: Request, session: SessionDep, settings: SettingsDep, authorizer: AuthzDep,
                       principal: PrincipalDep, model_id: str,
                       delete_registry_version: bool = True) -> dict[str, Any]:  # fmt: skip
    """Delete a fine-tuned model's adapter and merged weights, and (by default) its registry version."""
    row, removed = await service.delete_model(session, authorizer, principal, settings.mlflow_tracking_uri, model_id,
                                              delete_registry_version)  # fmt: skip
    mark_resource(request, "model", row.id, registry_version_deleted=removed)
    return {"id": row.id, "object": "model", "deleted": True, "registry_version_deleted": removed}


@router.put(
    "/registry/{name:path}/aliases/{alias}",
    response_model=RegistryModelObject,
    dependencies=[allow(Kind.REGISTRY_MODEL, "update")],
)
async def set_alias(request: Request, body: AliasSet, session: SessionDep, settings: SettingsDep, name: str,
                    alias: Alias) -> RegistryModelObject:  # fmt: skip
    """Point an alias (e.g. `champion`) at a version; an alias already set moves to it.

    With `require_passing_comparison` (or REGISTRY_REQUIRE_PASSING_COMPARISON), only a version whose
    fine-tune passed its automatic comparison with its base model gets the alias (409 otherwise)."""
    required = body.require_passing_comparison
    if required if required is not None else settings.registry_require_passing_comparison:
        await service.check_comparison(session, name, body.version)
    model = await service.set_alias(settings.mlflow_tracking_uri, name, alias, body.version)
    mark_resource(request, "registry_model", name, alias=alias, version=body.version)
    return model


@router.delete(
    "/registry/{name:path}/aliases/{alias}",
    response_model=RegistryModelObject,
    dependencies=[allow(Kind.REGISTRY_MODEL, "update")],
)
async def delete_alias(request: Request, settings: SettingsDep, name: str,
                       alias: Alias) -> RegistryModelObject:  # fmt: skip
    """Remove an alias from a registered model."""
    model = await service.delete_alias(settings.mlflow_tracking_uri, name, alias)
    mark_resource(request, "registry_model", name, alias=alias)
    return model


@router.get(
    "/registry/{name:path}", response_model=RegistryModelObject, dependencies=[allow(Kind.REGISTRY_MODEL, "read")]
)
async def retrieve_registered_model(settings: SettingsDep, name: str) -> RegistryModelObject:
    """A registered model's versions (newest first) and aliases."""
    return await service.registered_model(settings.mlflow_tracking_uri, name)
