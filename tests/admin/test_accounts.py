"""Organizations, users and keys through the admin API, checked against the user API's authentication."""

from __future__ import annotations

from datetime import timedelta

import httpx

from app.core.database import utcnow
from app.jobs.tables import Job
from app.users.tables import ApiKey
from tests.admin.conftest import Cast, Seeder


def _user_api_status(user_api: str, secret: str) -> tuple[int, str | None]:
    response = httpx.get(f"{user_api}/v1/files", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    return response.status_code, response.json().get("error", {}).get("code") if response.status_code != 200 else None


async def test_organizations_and_users_with_filters_and_pages(as_admin: httpx.Client, cast: Cast) -> None:
    org = as_admin.post("/admin/v1/organizations", json={"name": "globex"}).json()
    assert org["object"] == "organization" and org["user_count"] == 0
    assert as_admin.post("/admin/v1/organizations", json={"name": "globex"}).status_code == 409

    created = []
    for index in range(3):
        body = {"organization_id": org["id"], "email": f"dev{index}@globex.io", "roles": ["user"]}
        response = as_admin.post("/admin/v1/users", json=body)
        assert response.status_code == 200, response.text
        created.append(response.json())
    same_email = {"organization_id": org["id"], "email": "DEV0@globex.io"}
    assert as_admin.post("/admin/v1/users", json=same_email).status_code == 409
    bad = as_admin.post("/admin/v1/users", json={"organization_id": "org-missing", "email": "x@y.io"})
    assert bad.status_code == 404 and bad.json()["error"]["param"] == "organization_id"

    first = as_admin.get("/admin/v1/users", params={"organization_id": org["id"], "limit": 2}).json()
    assert [u["id"] for u in first["data"]] == [created[2]["id"], created[1]["id"]] and first["has_more"]
    rest = as_admin.get("/admin/v1/users", params={"organization_id": org["id"], "limit": 2, "after": first["last_id"]})
    assert [u["id"] for u in rest.json()["data"]] == [created[0]["id"]] and not rest.json()["has_more"]
    assert [u["email"] for u in as_admin.get("/admin/v1/users", params={"email": "dev1@"}).json()["data"]] == [
        "dev1@globex.io"
    ]
    operators = as_admin.get("/admin/v1/users", params={"role": "operator"}).json()["data"]
    assert [u["id"] for u in operators] == [cast.operator.id]

    assert as_admin.get(f"/admin/v1/organizations/{org['id']}").json()["user_count"] == 3
    named = as_admin.get("/admin/v1/organizations", params={"name": "lobe"}).json()["data"]
    assert [o["name"] for o in named] == ["globex"]

    promoted = as_admin.patch(f"/admin/v1/users/{created[0]['id']}", json={"roles": ["user", "operator"]}).json()
    assert promoted["roles"] == ["user", "operator"]
    assert as_admin.get(f"/admin/v1/users/{created[0]['id']}").json()["roles"] == ["user", "operator"]
    assert as_admin.patch(f"/admin/v1/users/{created[0]['id']}", json={"roles": ["root"]}).status_code == 400


async def test_an_admin_cannot_lock_themselves_out(as_admin: httpx.Client, cast: Cast) -> None:
    assert as_admin.post(f"/admin/v1/users/{cast.admin.id}/disable").status_code == 409
    assert as_admin.patch(f"/admin/v1/users/{cast.admin.id}", json={"roles": ["user"]}).status_code == 409


async def test_key_lifecycle_secret_once_expiry_and_revocation(
    as_admin: httpx.Client, user_api: str, cast: Cast, seed: Seeder, sessionmaker
) -> None:  # type: ignore[no-untyped-def]
    issued = as_admin.post(f"/admin/v1/users/{cast.user.id}/api-keys", json={"name": "ci", "expires_in_days": 30})
    assert issued.status_code == 200, issued.text
    key = issued.json()
    assert key["secret"].startswith(key["prefix"]) and key["status"] == "active"
    assert key["expires_at"] - key["created_at"] in range(30 * 86400 - 5, 30 * 86400 + 5)

    listed = as_admin.get(f"/admin/v1/users/{cast.user.id}/api-keys").json()["data"]
    assert {k["name"] for k in listed} == {"test", "ci"}
    for shown in [*listed, as_admin.get(f"/admin/v1/api-keys/{key['id']}").json()]:
        assert "secret" not in shown and "secret_hash" not in shown
        assert key["secret"] not in str(shown)

    assert _user_api_status(user_api, key["secret"]) == (200, None)
    used = as_admin.get(f"/admin/v1/api-keys/{key['id']}").json()
    assert used["last_used_at"] is not None

    # Expiry: moved into the past, the key stops working.
    async with sessionmaker() as session:
        row = await session.get(ApiKey, key["id"])
        row.expires_at = utcnow() - timedelta(seconds=1)
        await session.commit()
    assert _user_api_status(user_api, key["secret"]) == (401, "expired_api_key")
    assert as_admin.get(f"/admin/v1/api-keys/{key['id']}").json()["status"] == "expired"
    cleared = as_admin.patch(f"/admin/v1/api-keys/{key['id']}", json={"expires_at": None})
    assert cleared.json()["expires_at"] is None and cleared.json()["status"] == "active"
    assert _user_api_status(user_api, key["secret"]) == (200, None)
    past = as_admin.patch(f"/admin/v1/api-keys/{key['id']}", json={"expires_at": "2001-01-01T00:00:00Z"})
    assert past.status_code == 400

    revoked = as_admin.delete(f"/admin/v1/api-keys/{key['id']}")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert _user_api_status(user_api, key["secret"]) == (401, "revoked_api_key")
    assert _user_api_status(user_api, cast.user.key) == (200, None)  # the user's other key still works


async def test_disabling_stops_keys_at_once_and_cancels_jobs_only_when_asked(
    as_admin: httpx.Client, user_api: str, cast: Cast, seed: Seeder
) -> None:
    model = (await seed.base_model()).id
    training = (await seed.training_file(cast.user)).id
    running = await seed.job(cast.user, model, training, "running")
    queued = await seed.job(cast.user, model, training, "queued")

    response = as_admin.post(f"/admin/v1/users/{cast.user.id}/disable")
    assert response.status_code == 200 and response.json()["cancelled_jobs"] == []
    assert _user_api_status(user_api, cast.user.key) == (401, "account_disabled")
    still = await seed.get(Job, running.id)
    assert still.status == "running" and not still.cancel_requested

    again = as_admin.post(f"/admin/v1/users/{cast.user.id}/disable", json={"cancel_jobs": True}).json()
    assert sorted(again["cancelled_jobs"]) == sorted([running.id, queued.id])
    assert (await seed.get(Job, running.id)).cancel_requested  # the worker stops it at a checkpoint
    assert (await seed.get(Job, queued.id)).status == "cancelled"

    assert as_admin.post(f"/admin/v1/users/{cast.user.id}/api-keys", json={}).status_code == 409
    assert as_admin.post(f"/admin/v1/users/{cast.user.id}/enable").json()["disabled"] is False
    assert _user_api_status(user_api, cast.user.key) == (200, None)
