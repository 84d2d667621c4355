from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow


class FineTunedModel(Base):
    __tablename__ = "fine_tuned_models"

    id: Mapped[str] = mapped_column(String(300), primary_key=True)  # ft:{base}:{org}:{suffix}:{job}
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), unique=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    base_model: Mapped[str] = mapped_column(String(200))
    adapter_path: Mapped[str | None] = mapped_column(Text, default=None)
    merged_path: Mapped[str | None] = mapped_column(Text, default=None)
    registry_name: Mapped[str | None] = mapped_column(String(200), default=None)
    registry_version: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
