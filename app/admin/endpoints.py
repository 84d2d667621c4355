"""The admin API's routers, mounted by app/api/admin_app.py under /admin/v1.

Every route declares its Cerbos decision with `app.admin.access.allow(kind, action)`
(admin: everything; operator: read and list). Mutating handlers
name their object with `mark_resource` for the audit row. One commit policy for both
APIs: services only flush, and the session dependency (`SessionDep`, app/api/deps.py)
commits when the handler returns, before the response is sent, so a client acting on
the answer (say, on a key just revoked) finds it done.
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
