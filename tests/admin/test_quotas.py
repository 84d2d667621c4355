"""Quotas set through the admin API and enforced by the user API (429 naming the quota)."""

from __future__ import annotations

import httpx

from app.jobs.tables import Job
from tests.admin.conftest import Cast, Seeder


def _create_job(user_api: str, key: str, model: str, training_file: str) -> httpx.Response:
    body = {"model": model, "training_file": training_file, "method": {"type": "supervised"}}
    return httpx.post(f"{user_api}/v1/fine_tuning/jobs", json=body, headers={"Authorization": f"Bearer {key}"},
                      timeout=30)  # fmt: skip


async def test_concurrent_jobs_quota_of_one(as_admin: httpx.Client, user_api: str, cast: Cast, seed: Seeder) -> None:
    model = (await seed.base_model()).id
    training = (await seed.training_file(cast.user, bytes=1000)).id
    # The first job waits in the queue (seeded: no worker picks it up while the test looks).
    first = await seed.job(cast.user, model, training, "queued")

    quota = as_admin.put(f"/admin/v1/users/{cast.user.id}/quota", json={"max_concurrent_jobs": 1, "note": "trial"})
    assert quota.status_code == 200, quota.text
    assert quota.json()["limits"]["max_concurrent_jobs"] == 1
    assert quota.json()["usage"]["active_jobs"] == 1 and quota.json()["usage"]["file_bytes"] == 1000

    refused = _create_job(user_api, cast.user.key, model, training)
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "max_concurrent_jobs" and "max_concurrent_jobs" in error["message"]
    assert error["type"] == "insufficient_quota"

    cancelled = httpx.post(f"{user_api}/v1/fine_tuning/jobs/{first.id}/cancel", headers=cast.user.headers, timeout=30)
    assert cancelled.json()["status"] == "cancelled"
    accepted = _create_job(user_api, cast.user.key, model, training)
    assert accepted.status_code == 200, accepted.text
    assert (await seed.get(Job, accepted.json()["id"])) is not None


async def test_organization_quota_and_usage_views(
    as_admin: httpx.Client, user_api: str, cast: Cast, seed: Seeder
) -> None:
    model = (await seed.base_model()).id
    training = (await seed.training_file(cast.user)).id
    await seed.job(cast.user, model, training, "running", gpu_seconds=7200.0)

    path = f"/admin/v1/organizations/{cast.user.organization_id}/quota"
    empty = as_admin.get(path).json()
    assert empty["id"] is None and empty["limits"] == {"max_concurrent_jobs": None, "gpu_hours_per_month": None,
                                                        "storage_bytes": None}  # fmt: skip
    assert empty["usage"]["gpu_hours_this_month"] == 2.0 and empty["usage"]["active_jobs"] == 1

    as_admin.put(path, json={"gpu_hours_per_month": 2})
    refused = _create_job(user_api, cast.user.key, model, training)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "gpu_hours_per_month"

    listed = as_admin.get("/admin/v1/quotas", params={"subject": "organization"}).json()["data"]
    assert [(q["subject"], q["subject_id"]) for q in listed] == [("organization", cast.user.organization_id)]
    assert as_admin.delete(path).json()["limits"]["gpu_hours_per_month"] is None
    assert _create_job(user_api, cast.user.key, model, training).status_code == 200
    assert as_admin.put("/admin/v1/users/user-missing/quota", json={}).status_code == 404
    assert as_admin.put(path, json={"storage_bytes": -1}).status_code == 400
