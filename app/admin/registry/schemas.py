"""Fine-tuned models with their MLflow registry versions and aliases."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.admin.timestamps import unix
from app.finetuned.tables import FineTunedModel

# MLflow refuses `latest` and `v<digits>` as aliases (they name versions already).
ALIAS_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]{0,254}$"
RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


class RegistryVersion(BaseModel):
    version: int
    status: str | None
    source: str | None
    run_id: str | None
    created_at: int
    aliases: list[str]


class RegistryModelObject(BaseModel):
    object: Literal["registry_model"] = "registry_model"
    name: str
    description: str | None
    aliases: dict[str, int]
    versions: list[RegistryVersion]


class RegistryLink(BaseModel):
    name: str | None
    version: int | None
    # The aliases pointing at this model's own version.
    aliases: list[str] = []
    model: RegistryModelObject | None = None
    error: str | None = None  # the registry could not be read for this model


class FineTunedModelObject(BaseModel):
    object: Literal["model"] = "model"
    id: str
    job_id: str
    owner_id: str
    organization_id: str
    base_model: str
    adapter_path: str | None
    merged_path: str | None
    created_at: int
    deleted_at: int | None
    registry: RegistryLink

    @classmethod
    def of(cls, row: FineTunedModel, registry: RegistryLink) -> FineTunedModelObject:
        return cls(
            id=row.id, job_id=row.job_id, owner_id=row.owner_id, organization_id=row.organization_id,
            base_model=row.base_model, adapter_path=row.adapter_path, merged_path=row.merged_path,
            created_at=unix(row.created_at) or 0, deleted_at=unix(row.deleted_at), registry=registry,
        )  # fmt: skip


# MLflow keeps version numbers in an SQL integer column (32-bit on PostgreSQL). A number past the
# backend's range made the MLflow server fail, and its client retried that for minutes while the
# admin request waited (found by fuzzing: a 31-digit version held the request over 3 minutes).
MAX_REGISTRY_VERSION = 2**31 - 1


class AliasSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=MAX_REGISTRY_VERSION)
    # Move the alias only if the version's fine-tune passed its automatic comparison with its base model
    # (app/evals/comparison.py); unset: the platform's REGISTRY_REQUIRE_PASSING_COMPARISON decides.
    require_passing_comparison: bool | None = None


def registry_link(row: FineTunedModel, described: dict[str, Any] | None, error: str | None) -> RegistryLink:
    link = RegistryLink(name=row.registry_name, version=row.registry_version, error=error)
    if described is not None:
        link.model = RegistryModelObject(**described)
        link.aliases = sorted(alias for alias, version in link.model.aliases.items() if version == row.registry_version)
    return link
