"""Every admin endpoint against the real Cerbos policies: admin does all, operator reads and controls jobs,
a user nothing.

The routes are read from the admin routers themselves, so an endpoint added later
is swept too.
"""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.routing import APIRoute

from tests.admin.conftest import Cast

READ_METHODS = {"GET"}


def admin_routes() -> list[tuple[str, str]]:
    """(method, path) of every admin route; imported late, once the harness has set the environment."""
    from app.admin.endpoints import routers

    found: list[tuple[str, str]] = []
    for router in routers:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            path = re.sub(r"\{[^}]+\}", "probe", route.path)
            found.extend((method, path) for method in sorted(route.methods or ()))
    return found


def test_the_sweep_covers_every_topic(stack: object) -> None:
    routes = admin_routes()
    paths = {path for _, path in routes}
    for topic in ("users", "organizations", "api-keys", "quota", "base-models", "jobs", "fleet", "models",
                  "registry", "audit-log", "health", "serving"):  # fmt: skip
        assert any(topic in path for path in paths), topic
    assert len(routes) >= 35


def _call(client: httpx.Client, method: str, path: str) -> httpx.Response:
    body: dict[str, object] | None = None if method in READ_METHODS or method == "DELETE" else {}
    return client.request(method, path, json=body)


async def test_a_plain_user_is_refused_everywhere(admin_api: str, cast: Cast) -> None:
    with httpx.Client(base_url=admin_api, headers=cast.user.headers, timeout=30) as client:
        for method, path in admin_routes():
            response = _call(client, method, path)
            # Refused by the policy before anything is looked up: 403, whether the probed object exists or not.
            assert response.status_code == 403, (method, path, response.status_code, response.text)
            error = response.json()["error"]
            assert (error["type"], error["code"]) == ("permission_error", "forbidden"), (method, path, error)


async def test_no_key_is_401_everywhere(admin_api: str, cast: Cast) -> None:
    with httpx.Client(base_url=admin_api, timeout=30) as client:
        for method, path in admin_routes():
            assert _call(client, method, path).status_code == 401, (method, path)


# Job control is operating (policies/README.md): the one kind of change an operator makes.
OPERATOR_CHANGES = {("POST", "/admin/v1/jobs/probe/cancel"), ("POST", "/admin/v1/jobs/probe/retry"),
                    ("POST", "/admin/v1/jobs/probe/priority")}  # fmt: skip


async def test_the_operator_reads_everything_and_changes_only_jobs(as_operator: httpx.Client) -> None:
    assert set(admin_routes()) >= OPERATOR_CHANGES
    for method, path in admin_routes():
        response = _call(as_operator, method, path)
        if (method, path) in OPERATOR_CHANGES:
            # Let through: the made-up job is not found (or the empty priority body is refused).
            assert response.status_code in (400, 404), (method, path, response.status_code, response.text)
        elif method in READ_METHODS and path.endswith("/health"):
            # Let through: the checks are answered, 200 exactly when every one is ok (no workers here: 503).
            checks = response.json()["checks"]
            healthy = all(check["status"] == "ok" for check in checks)
            assert response.status_code == (200 if healthy else 503), (path, response.status_code, checks)
        elif method in READ_METHODS:
            # Let through to the lookup: a list answers, an item probed with a made-up id is not found.
            expected = 404 if "probe" in path else 200
            assert response.status_code == expected, (method, path, response.status_code, response.text)
            if expected == 404:
                assert response.json()["error"]["code"].endswith("not_found"), (path, response.text)
        else:
            assert response.status_code == 403, (method, path, response.status_code, response.text)
            assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("path", ["/admin/v1/users", "/admin/v1/organizations", "/admin/v1/jobs",
                                  "/admin/v1/base-models", "/admin/v1/quotas", "/admin/v1/models",
                                  "/admin/v1/audit-log", "/admin/v1/fleet/queues"])  # fmt: skip
async def test_operator_lists_are_real_pages(as_operator: httpx.Client, path: str) -> None:
    response = as_operator.get(path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("object") == "list" or "queues" in body
