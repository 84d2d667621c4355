from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow


class CatalogEntry(Base):
    """A base model users may fine-tune: a Hugging Face hub id (with revision) or a local path."""

    __tablename__ = "base_models"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # the name users pass as `model`
    source: Mapped[str] = mapped_column(String(500))  # hub id or absolute local path
    revision: Mapped[str | None] = mapped_column(String(100), default=None)
    chat_template: Mapped[str | None] = mapped_column(Text, default=None)
    max_seq_length: Mapped[int] = mapped_column(Integer, default=2048)
    parameter_count: Mapped[int | None] = mapped_column(BigInteger, default=None)
    allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    # not_downloaded | downloading | ready | failed (local paths are ready at once)
    download_status: Mapped[str] = mapped_column(String(16), default="ready")
    download_error: Mapped[str | None] = mapped_column(Text, default=None)
    owned_by: Mapped[str] = mapped_column(String(100), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
