from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow


class File(Base):
    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # Server-generated name under DATASETS dir; the client's filename never touches the disk.
    storage_name: Mapped[str] = mapped_column(String(128), unique=True)
    # processed | error | deleted
    status: Mapped[str] = mapped_column(String(16), default="processed")
    status_details: Mapped[str | None] = mapped_column(default=None)
    # "chat" | "preference"
    data_format: Mapped[str | None] = mapped_column(String(16), default=None)
    statistics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Dataset intelligence (Qdrant): pending | indexing | indexed | failed, plus its report.
    index_status: Mapped[str] = mapped_column(String(16), default="pending")
    duplicate_report: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
