"""OpenAI's file object, with the platform's validation statistics beside it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer

from app.files.tables import File

# OpenAI's file object types these as integer / string, not nullable: a file without one leaves it out.
OMITTED_WHEN_NONE = ("expires_at", "status_details")


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str
    status_details: str | None = None
    expires_at: int | None = None
    format: str | None = None
    statistics: dict[str, Any] = {}
    index_status: str | None = None
    duplicates: int | None = None
    near_duplicates: int | None = None

    @model_serializer(mode="wrap")
    def _openai_optional_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        fields: dict[str, Any] = handler(self)
        for name in OMITTED_WHEN_NONE:
            if fields.get(name, 0) is None:
                del fields[name]
        return fields

    @classmethod
    def of(cls, row: File) -> FileObject:
        report = row.duplicate_report or {}
        counts = report.get("counts", {})
        return cls(
            id=row.id,
            bytes=row.bytes,
            created_at=int(row.created_at.timestamp()),
            filename=row.filename,
            purpose=row.purpose,
            status=row.status,
            status_details=row.status_details,
            format=row.data_format,
            statistics=row.statistics or {},
            index_status=row.index_status,
            duplicates=counts.get("exact_duplicate_lines"),
            near_duplicates=counts.get("near_duplicate_lines"),
        )


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
    has_more: bool
    # Required strings in OpenAI's ListFilesResponse: an empty page names "" (the SDK pages by the last item).
    first_id: str
    last_id: str

    @classmethod
    def of(cls, data: list[FileObject], has_more: bool) -> FileList:
        return cls(data=data, has_more=has_more, first_id=data[0].id if data else "",
                   last_id=data[-1].id if data else "")  # fmt: skip
