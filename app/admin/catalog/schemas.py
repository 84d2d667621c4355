"""The base-model catalog as admins manage it: hub ids (with revision) and local paths."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from app.admin.timestamps import unix
from app.catalog.tables import CatalogEntry
from app.core.config import get_settings
from app.inference.catalog import serving_of

# The name users pass as `model`: hub-style `org/name` or a plain name, no spaces or `:`
# (`:` separates the parts of a fine-tuned model name).
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$"
SourceType = Literal["hub", "local"]


def source_type_of(source: str) -> SourceType:
    return "local" if source.startswith("/") else "hub"


class BaseModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Defaults to the hub id, or to the folder name of a local path.
    id: str | None = Field(default=None, max_length=200, pattern=MODEL_ID_PATTERN)
    source: str = Field(min_length=1, max_length=500, description="Hugging Face hub id, or an absolute local path")
    revision: str | None = Field(default=None, max_length=100, description="branch, tag or commit (hub only)")
    chat_template: str | None = Field(default=None, max_length=100_000)
    max_seq_length: StrictInt = Field(default=2048, ge=16, le=1_048_576)
    parameter_count: StrictInt | None = Field(default=None, ge=1)
    allowed: StrictBool = True
    owned_by: str = Field(default="system", max_length=100)
    # Hub models: fill the shared cache now, on the CPU worker.
    download: StrictBool = True

    @model_validator(mode="after")
    def _source_shape(self) -> BaseModelCreate:
        if source_type_of(self.source) == "local":
            if self.revision is not None:
                raise ValueError("revision applies to hub models only")
        elif not _looks_like_hub_id(self.source):
            raise ValueError("source must be a Hugging Face id ('org/name') or an absolute path")
        return self

    def entry_id(self) -> str:
        if self.id:
            return self.id
        return self.source.rstrip("/").rsplit("/", 1)[-1] if source_type_of(self.source) == "local" else self.source


def _looks_like_hub_id(source: str) -> bool:
    parts = source.split("/")
    return 1 <= len(parts) <= 2 and all(part and " " not in part and part not in (".", "..") for part in parts)


class BaseModelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed: StrictBool | None = None
    revision: str | None = Field(default=None, max_length=100)
    chat_template: str | None = Field(default=None, max_length=100_000)
    max_seq_length: StrictInt | None = Field(default=None, ge=16, le=1_048_576)
    parameter_count: StrictInt | None = Field(default=None, ge=1)
    owned_by: str | None = Field(default=None, max_length=100)


class BaseModelObject(BaseModel):
    object: Literal["base_model"] = "base_model"
    id: str
    source: str
    source_type: SourceType
    revision: str | None
    chat_template: str | None
    max_seq_length: int
    parameter_count: int | None
    allowed: bool
    download_status: str
    download_error: str | None
    owned_by: str
    created_at: int
    serving: dict[str, Any]  # whether /v1/chat/completions serves it, on which engine, how adapters load

    @classmethod
    def of(cls, row: CatalogEntry) -> BaseModelObject:
        return cls(
            id=row.id, source=row.source, source_type=source_type_of(row.source), revision=row.revision,
            chat_template=row.chat_template, max_seq_length=row.max_seq_length, parameter_count=row.parameter_count,
            allowed=row.allowed, download_status=row.download_status, download_error=row.download_error,
            owned_by=row.owned_by, created_at=unix(row.created_at) or 0, serving=serving_of(get_settings(), row.id),
        )  # fmt: skip
