"""Quota limits per organization or per user, and the usage they are measured against."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from app.users.quotas import Usage
from app.users.tables import Quota

Subject = Literal["organization", "user"]


class QuotaLimits(BaseModel):
    """Null means unlimited."""

    model_config = ConfigDict(extra="forbid")
    # Strict: a JSON `false` or "3" is refused, not read as 0 or 3.
    max_concurrent_jobs: StrictInt | None = Field(default=None, ge=0)
    gpu_hours_per_month: StrictFloat | None = Field(default=None, ge=0)
    storage_bytes: StrictInt | None = Field(default=None, ge=0)


class QuotaSet(QuotaLimits):
    note: str = Field(default="", max_length=2000)


class UsageObject(BaseModel):
    active_jobs: int
    gpu_hours_this_month: float
    file_bytes: int
    model_bytes: int
    storage_bytes: int  # files and models together

    @classmethod
    def of(cls, usage: Usage) -> UsageObject:
        return cls(
            active_jobs=usage.active_jobs,
            gpu_hours_this_month=round(usage.gpu_hours_this_month, 4),
            file_bytes=usage.file_bytes,
            model_bytes=usage.model_bytes,
            storage_bytes=usage.file_bytes + usage.model_bytes,
        )


class QuotaObject(BaseModel):
    object: Literal["quota"] = "quota"
    id: int | None  # the quota row; null while the subject has no limits
    subject: Subject
    subject_id: str
    limits: QuotaLimits
    note: str
    usage: UsageObject

    @classmethod
    def of(cls, subject: Subject, subject_id: str, row: Quota | None, usage: Usage) -> QuotaObject:
        if row is None:
            return cls(id=None, subject=subject, subject_id=subject_id, limits=QuotaLimits(), note="",
                       usage=UsageObject.of(usage))  # fmt: skip
        limits = QuotaLimits(max_concurrent_jobs=row.max_concurrent_jobs, gpu_hours_per_month=row.gpu_hours_per_month,
                             storage_bytes=row.storage_bytes)  # fmt: skip
        return cls(id=row.id, subject=subject, subject_id=subject_id, limits=limits, note=row.note,
                   usage=UsageObject.of(usage))  # fmt: skip
