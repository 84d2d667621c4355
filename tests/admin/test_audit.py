"""The audit log: both APIs' mutating calls, filtered by actor, action, resource and time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from app.core.database import utcnow
from tests.admin.conftest import Cast, Seeder


async def test_mutations_of_both_apis_are_in_the_audit_log(
    as_admin: httpx.Client, as_operator: httpx.Client, user_api: str, cast: Cast, seed: Seeder
) -> None:
    started = utcnow() - timedelta(seconds=1)
    model = (await seed.base_model()).id
    job = await seed.job(cast.user, model, (await seed.training_file(cast.user)).id, "queued")
    key = as_admin.post(f"/admin/v1/users/{cast.user.id}/api-keys", json={"name": "audit"}).json()
    as_admin.delete(f"/admin/v1/api-keys/{key['id']}")
    assert as_operator.post("/admin/v1/organizations", json={"name": "sneaky"}).status_code == 403
    cancelled = httpx.post(f"{user_api}/v1/fine_tuning/jobs/{job.id}/cancel", headers=cast.user.headers, timeout=30)
    assert cancelled.status_code == 200

    def entries(**params: Any) -> list[dict[str, object]]:
        response = as_operator.get("/admin/v1/audit-log", params=params)
        assert response.status_code == 200, response.text
        return response.json()["data"]  # type: ignore[no-any-return]

    mine = entries(actor_id=cast.admin.id)
    assert [(e["action"], e["resource_id"], e["status_code"]) for e in mine] == [
        ("DELETE /admin/v1/api-keys/{key_id}", key["id"], 200),
        ("POST /admin/v1/users/{user_id}/api-keys", key["id"], 200),
    ]
    assert mine[1]["details"] == {"user_id": cast.user.id} and mine[1]["api"] == "admin"
    assert "secret" not in str(mine)

    [refused] = entries(actor_id=cast.operator.id)
    assert refused["status_code"] == 403 and refused["action"] == "POST /admin/v1/organizations"

    [user_call] = entries(api="user")
    assert user_call["actor_id"] == cast.user.id and user_call["resource_id"] == job.id
    assert user_call["resource_type"] == "fine_tuning_job"

    assert [e["resource_id"] for e in entries(resource_type="api_key", action="delete")] == [key["id"]]
    assert entries(resource_id=job.id)[0]["action"] == "POST /v1/fine_tuning/jobs/{fine_tuning_job_id}/cancel"
    assert len(entries(since=started.isoformat())) == 4
    assert entries(until=started.isoformat()) == []
    page = as_operator.get("/admin/v1/audit-log", params={"limit": 2}).json()
    rest = entries(limit=10, after=page["data"][-1]["id"])
    assert page["has_more"] and len(rest) == 2
