"""OpenAI's file object, with the platform's validation statistics beside it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from app.files.tables import File


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
    first_id: str | None = None
    last_id: str | None = None
