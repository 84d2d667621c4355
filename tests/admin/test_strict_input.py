"""Admin request bodies take JSON types as they are: `false` is not 0, `0` is not false, "3" is not 3.

Found by Schemathesis (docs/evidence.md §2): pydantic's lax mode read such values and the admin API
answered 200. Time filters take ISO 8601 or Unix seconds, and the OpenAPI document says both.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from app.core.database import utcnow
from tests.admin.conftest import Cast, Seeder


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("put", "/admin/v1/users/{user}/quota", {"storage_bytes": False}, "storage_bytes"),
        ("put", "/admin/v1/users/{user}/quota", {"max_concurrent_jobs": "3"}, "max_concurrent_jobs"),
        ("put", "/admin/v1/users/{user}/quota", {"gpu_hours_per_month": True}, "gpu_hours_per_month"),
        ("post", "/admin/v1/base-models", {"source": "/models/x", "allowed": 0}, "allowed"),
        ("post", "/admin/v1/base-models", {"source": "/models/x", "download": 0}, "download"),
        ("post", "/admin/v1/base-models", {"source": "/models/x", "max_seq_length": "2048"}, "max_seq_length"),
        ("post", "/admin/v1/users/{user}/api-keys", {"name": "ci", "expires_in_days": "30"}, "expires_in_days"),
    ],
)
def test_a_value_of_the_wrong_json_type_is_refused_naming_the_field(  # type: ignore[no-untyped-def]
    as_admin: httpx.Client, cast: Cast, method, path, body, field
) -> None:
    response = as_admin.request(method.upper(), path.format(user=cast.user.id), json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == field, response.json()
    assert as_admin.get("/admin/v1/base-models").json()["data"] == []  # nothing was made


async def test_time_filters_take_iso_8601_and_unix_seconds(as_admin: httpx.Client, cast: Cast, seed: Seeder) -> None:
    model = (await seed.base_model()).id
    job = await seed.job(cast.user, model, (await seed.training_file(cast.user)).id, "queued")
    before, after = utcnow() - timedelta(hours=1), utcnow() + timedelta(hours=1)
    for low, high in ((before.isoformat(), after.isoformat()), (before.timestamp(), after.timestamp())):
        listed = as_admin.get("/admin/v1/jobs", params={"created_after": low, "created_before": high})
        assert [row["id"] for row in listed.json()["data"]] == [job.id], listed.text
    none = as_admin.get("/admin/v1/jobs", params={"created_before": before.timestamp()})
    assert none.status_code == 200 and none.json()["data"] == []
    bad = as_admin.get("/admin/v1/jobs", params={"created_before": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "created_before"
    parameters = as_admin.get("/openapi.json").json()["paths"]["/admin/v1/jobs"]["get"]["parameters"]
    created_before = next(p for p in parameters if p["name"] == "created_before")
    assert {"type": "number"} in created_before["schema"]["anyOf"]
