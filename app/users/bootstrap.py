"""The first admin of a deployment: created once, its key shown once (every admin route needs a key).

Both `make run` (app/devstack/bootstrap.py) and the operators' command
(`python -m app.admin.bootstrap create-admin`) go through `ensure_admin`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import Conflict
from app.users import repository, service
from app.users.tables import User

ADMIN_ROLE = "admin"
ADMIN_ORGANIZATION = "platform-admins"


@dataclass(frozen=True)
class AdminAccount:
    user: User
    created: bool
    key: str | None  # the secret of a key issued now; stored keys are hashes and never shown again


async def ensure_admin(
    session: AsyncSession,
    settings: Settings,
    email: str,
    *,
    name: str = "Administrator",
    organization: str = ADMIN_ORGANIZATION,
    new_key: bool = False,
) -> AdminAccount:
    """The admin with this email, created (with a key) when missing; another key only with `new_key`.

    Running it again changes nothing, so it is safe in a provisioning script. An account with that
    email but without the admin role is refused: roles change through the admin API, audited.
    """
    user = await repository.user_by_email(session, email)
    if user is not None and ADMIN_ROLE not in user.roles:
        raise Conflict(f"'{email}' exists without the admin role; grant it through the admin API instead.",
                       param="email", code="user_exists")  # fmt: skip
    if user is not None and user.disabled:
        raise Conflict(f"'{email}' is disabled; enable it through the admin API (POST /admin/v1/users/{{id}}/enable).",
                       param="email", code="user_disabled")  # fmt: skip
    created = user is None
    if user is None:
        home = await repository.organization_by_name(session, organization)
        if home is None:
            home = await service.create_organization(session, organization)
        user = await service.create_user(session, home.id, email, name, [ADMIN_ROLE])
    key = None
    if created or new_key:
        key = (
            await service.issue_key(session, settings, user.id, "first admin key" if created else "admin key")
        ).secret
    return AdminAccount(user=user, created=created, key=key)
