"""Imports every table module so `Base.metadata` is complete (Alembic, tests)."""

from app.audit.tables import AuditEntry
from app.catalog.tables import CatalogEntry
from app.core.database import Base
from app.files.tables import File
from app.finetuned.tables import FineTunedModel
from app.inference.tables import InferenceRateLimit, InferenceUsage
from app.jobs.tables import Checkpoint, Job, JobEvent, OutboxMessage
from app.users.tables import ApiKey, Organization, Quota, User

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "CatalogEntry",
    "Checkpoint",
    "File",
    "FineTunedModel",
    "InferenceRateLimit",
    "InferenceUsage",
    "Job",
    "JobEvent",
    "Organization",
    "OutboxMessage",
    "Quota",
    "User",
]
