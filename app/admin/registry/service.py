"""Fine-tuned models and the MLflow registry: list with versions, aliases, delete with files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.registry import mlflow_registry as registry
from app.admin.registry.schemas import RESERVED_ALIAS, FineTunedModelObject, RegistryModelObject, registry_link
from app.authz import Authorizer, Principal
from app.core.errors import BadRequest, Conflict, NotFound, PlatformError
from app.finetuned import repository
from app.finetuned import service as finetuned
from app.finetuned.tables import FineTunedModel
from app.jobs import repository as jobs


async def _described(tracking_uri: str, names: set[str]) -> dict[str, tuple[dict[str, Any] | None, str | None]]:
    """Each registered model once, however many fine-tuned models point at it; errors kept per name."""
    found: dict[str, tuple[dict[str, Any] | None, str | None]] = {}
    for name in sorted(names):
        try:
            found[name] = (await registry.call(registry.describe, tracking_uri, name), None)
        except PlatformError as error:
            found[name] = (None, error.message)
    return found


async def _objects(tracking_uri: str, rows: Sequence[FineTunedModel]) -> list[FineTunedModelObject]:
    described = await _described(tracking_uri, {row.registry_name for row in rows if row.registry_name})
    objects = []
    for row in rows:
        model, error = described.get(row.registry_name or "", (None, None))
        objects.append(FineTunedModelObject.of(row, registry_link(row, model, error)))
    return objects


async def list_models(
    session: AsyncSession, tracking_uri: str, *, owner_id: str | None, organization_id: str | None,
    base_model: str | None, include_deleted: bool, after: str | None, limit: int,
) -> tuple[list[FineTunedModelObject], bool]:  # fmt: skip
    rows, has_more = await repository.models_page(
        session, owner_id=owner_id, organization_id=organization_id, base_model=base_model,
        include_deleted=include_deleted, after=after, limit=limit,
    )  # fmt: skip
    return await _objects(tracking_uri, rows), has_more


async def _row(session: AsyncSession, model_id: str) -> FineTunedModel:
    row = await repository.get(session, model_id)
    if row is None:
        raise NotFound(f"The model '{model_id}' does not exist", param="model_id", code="model_not_found")
    return row


async def get_model(session: AsyncSession, tracking_uri: str, model_id: str) -> FineTunedModelObject:
    return (await _objects(tracking_uri, [await _row(session, model_id)]))[0]


async def delete_model(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, tracking_uri: str, model_id: str,
    delete_registry_version: bool,
) -> tuple[FineTunedModel, bool]:  # fmt: skip
    """Delete the model's weights and mark it deleted; its registry version too unless told not to.

    The registry goes first: were it to fail, the files are still there and the delete can be repeated.
    """
    row = await _row(session, model_id)
    if row.deleted_at is not None:
        raise NotFound(f"The model '{model_id}' is deleted already.", param="model_id", code="model_not_found")
    removed = False
    if delete_registry_version and row.registry_name and row.registry_version:
        removed = await registry.call(registry.delete_version, tracking_uri, row.registry_name, row.registry_version)
    await finetuned.delete(session, authorizer, principal, model_id)
    return row, removed


async def registered_model(tracking_uri: str, name: str) -> RegistryModelObject:
    return RegistryModelObject(**await registry.call(registry.describe, tracking_uri, name))


def _check_alias(alias: str) -> None:
    if RESERVED_ALIAS.match(alias):
        raise BadRequest(f"'{alias}' is reserved by MLflow (it names versions); choose another alias.", param="alias")


async def check_comparison(session: AsyncSession, name: str, version: int) -> None:
    """409 unless version `version` of `name` is a fine-tune whose comparison with its base passed."""
    row = await repository.by_registry_version(session, name, version)
    job = await jobs.get(session, row.job_id) if row is not None else None
    comparison = (job.comparison if job is not None else None) or {}
    if comparison.get("status") == "completed" and comparison.get("passed"):
        return
    if job is None:
        reason = "it is not a fine-tune of this platform, so it has no comparison"
    elif not job.validation_file:
        reason = f"its job {job.id} had no validation file, so it was never compared with its base model"
    elif comparison.get("status") in (None, "running"):
        reason = f"the comparison of its job {job.id} with its base model has not finished"
    elif comparison.get("status") == "completed":
        fine_tuned, base = comparison["fine_tuned"], comparison["base"]
        reason = (f"its fine-tune passed {fine_tuned['passed']}/{fine_tuned['total']} validation items against its "
                  f"base model's {base['passed']}/{base['total']}")  # fmt: skip
    else:
        reason = f"the comparison of its job {job.id} is {comparison['status']}: {comparison.get('reason', '')}"
    raise Conflict(
        f"Version {version} of '{name}' has no passing comparison with its base model: {reason}.",
        param="version",
        code="comparison_not_passed",
        details={"comparison": comparison or None},
    )


async def set_alias(tracking_uri: str, name: str, alias: str, version: int) -> RegistryModelObject:
    _check_alias(alias)
    await registry.call(registry.set_alias, tracking_uri, name, alias, version)
    return await registered_model(tracking_uri, name)


async def delete_alias(tracking_uri: str, name: str, alias: str) -> RegistryModelObject:
    await registry.call(registry.delete_alias, tracking_uri, name, alias)
    return await registered_model(tracking_uri, name)
