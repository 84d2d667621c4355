"""What an operator does through the admin API is refused by every API process on its very next request.

Two user API processes (each with its own key cache) and the admin API: every key is first
used a few times on both, over kept-alive connections, so both hold it; then the admin API
changes it, and the next request on each process must already be refused.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

WARM_REQUESTS = 3


@pytest.fixture
def user_apis(user_api: str, second_user_api: str) -> Iterator[list[httpx.Client]]:
    clients = [httpx.Client(base_url=url, timeout=30) for url in (user_api, second_user_api)]
    yield clients
    for client in clients:
        client.close()


@pytest.fixture
async def as_admin(admin_api: str, make_user) -> AsyncIterator[httpx.Client]:  # type: ignore[no-untyped-def]
    admin = await make_user("adam@ops.example.com", "ops", ["admin"])
    with httpx.Client(base_url=admin_api, headers=admin.headers, timeout=30) as client:
        yield client


def answers(user_apis: list[httpx.Client], secret: str) -> list[tuple[int, str | None]]:
    """(status, error code) of one file list on each process."""
    found = []
    for client in user_apis:
        response = client.get("/v1/files", headers={"Authorization": f"Bearer {secret}"})
        found.append((response.status_code, None if response.is_success else response.json()["error"]["code"]))
    return found


def warm(user_apis: list[httpx.Client], secret: str) -> None:
    for _ in range(WARM_REQUESTS):
        assert answers(user_apis, secret) == [(200, None)] * len(user_apis)


def issue(as_admin: httpx.Client, user_id: str, **body: object) -> dict[str, str]:
    response = as_admin.post(f"/admin/v1/users/{user_id}/api-keys", json={"name": "at-once", **body})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_revoked_key_is_refused_at_once(as_admin, user_apis, make_user) -> None:  # type: ignore[no-untyped-def]
    alice = await make_user("alice@acme.example.com")
    key = issue(as_admin, alice.id)
    warm(user_apis, key["secret"])
    assert as_admin.delete(f"/admin/v1/api-keys/{key['id']}").status_code == 200
    assert answers(user_apis, key["secret"]) == [(401, "revoked_api_key")] * 2
    assert answers(user_apis, alice.key) == [(200, None)] * 2  # her other key is untouched


async def test_a_disabled_user_is_refused_at_once_and_back_when_enabled(as_admin, user_apis, make_user) -> None:  # type: ignore[no-untyped-def]
    bob = await make_user("bob@acme.example.com")
    warm(user_apis, bob.key)
    assert as_admin.post(f"/admin/v1/users/{bob.id}/disable").status_code == 200
    assert answers(user_apis, bob.key) == [(401, "account_disabled")] * 2
    assert as_admin.post(f"/admin/v1/users/{bob.id}/enable").status_code == 200
    assert answers(user_apis, bob.key) == [(200, None)] * 2


async def test_an_expired_key_is_refused_once_its_time_passes(as_admin, user_apis, make_user) -> None:  # type: ignore[no-untyped-def]
    carol = await make_user("carol@acme.example.com")
    key = issue(as_admin, carol.id, expires_in_days=30)
    warm(user_apis, key["secret"])
    # The admin API takes only future expiries: shortened to a moment from now, then let it pass.
    ends = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    shortened = as_admin.patch(f"/admin/v1/api-keys/{key['id']}", json={"expires_at": ends.isoformat()})
    assert shortened.status_code == 200, shortened.text
    warm(user_apis, key["secret"])
    time.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 0.1)
    assert answers(user_apis, key["secret"]) == [(401, "expired_api_key")] * 2


async def test_a_role_taken_away_is_gone_at_once(admin_api: str, as_admin, make_user) -> None:  # type: ignore[no-untyped-def]
    olga = await make_user("olga@ops.example.com", "ops", ["operator"])
    with httpx.Client(base_url=admin_api, headers=olga.headers, timeout=30) as as_olga:
        for _ in range(WARM_REQUESTS):
            assert as_olga.get("/admin/v1/users").status_code == 200
        assert as_admin.patch(f"/admin/v1/users/{olga.id}", json={"roles": ["user"]}).status_code == 200
        assert as_olga.get("/admin/v1/users").status_code == 403
