"""The admin API's routers, mounted by app/api/admin_app.py under /admin/v1.

Every handler takes its principal from `app.admin.access.allowed(kind, action)`,
a Cerbos decision (admin: everything; operator: read and list). Mutating handlers
name their object with `mark_resource` for the audit row, and commit before they
answer: FastAPI closes the session dependency only after the response is sent,
and a client acting on the answer (say, on a key just revoked) must find it done.
"""

from __future__ import annotations

from fastapi import APIRouter

from app.admin import fleet, health
from app.admin.accounts import endpoints as accounts
from app.admin.audit import endpoints as audit
from app.admin.catalog import endpoints as catalog
from app.admin.jobs import endpoints as jobs
from app.admin.quotas import endpoints as quotas
from app.admin.registry import endpoints as registry
from app.inference import admin_endpoints as serving

routers: list[APIRouter] = [
    accounts.router,
    quotas.router,
    catalog.router,
    jobs.router,
    fleet.router,
    registry.router,
    serving.router,
    audit.router,
    health.router,
]
