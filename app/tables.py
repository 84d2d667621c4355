"""The composition root of the schema: every table of every domain, so `Base.metadata` is complete.

Alembic (`alembic/env.py`) and the test harness import this module; application code imports
the table modules of the domains it uses. It sits above every domain, so nothing in app/ imports it.
"""

from app.audit.tables import AuditEntry
from app.catalog.tables import CatalogEntry
from app.core.database import Base
from app.core.outbox import OutboxMessage
from app.evals.tables import Eval, EvalOutputItem, EvalRun
from app.files.tables import File
from app.finetuned.tables import FineTunedModel
from app.inference.tables import InferenceRateLimit, InferenceUsage
from app.jobs.tables import Checkpoint, Job, JobEvent
from app.users.tables import ApiKey, Organization, Quota, User

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "CatalogEntry",
    "Checkpoint",
    "Eval",
    "EvalOutputItem",
    "EvalRun",
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
