"""The API-key cache on a real PostgreSQL: used while nothing changes, and never stale when something does.

Two engines stand for two processes: `api` authenticates as an API process does (its pool
listens for change notices), `other` writes the changes as the admin API, a script or `psql`
would. Each change is followed at once, with no pause, by the next authentication on `api`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.authz import Principal
from app.core.config import Settings
from app.core.database import create_engine, create_sessionmaker, utcnow
from app.core.errors import Unauthorized
from app.users.authentication import authenticate
from app.users.credential_cache import CredentialCache
from app.users.tables import ApiKey, User
from tests.database import change

ROUNDS = 20  # each change is tried this many times, on fresh keys: a race would show


@dataclass
class ApiProcess:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: CredentialCache
    settings: Settings
    key_lookups: list[str]

    async def principal(self, key: str) -> Principal:
        async with self.sessionmaker() as session:  # one request's session, closed before the next
            principal = await authenticate(session, self.settings, self.cache, f"Bearer {key}")
            await session.commit()
        return principal

    async def refusal(self, key: str) -> str | None:
        try:
            await self.principal(key)
        except Unauthorized as error:
            return error.code
        return None


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[ApiProcess]:
    engine = create_engine(settings)
    process = ApiProcess(engine, create_sessionmaker(engine), CredentialCache.attach(engine, 30.0), settings, [])

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM api_keys JOIN users" in statement:
            process.key_lookups.append(statement)

    yield process
    await engine.dispose()


async def test_a_known_key_is_looked_up_once(api: ApiProcess, make_user: Callable[..., Any]) -> None:
    user = await make_user("cached@acme.example.com")
    first = await api.principal(user.key)
    for _ in range(5):
        assert await api.principal(user.key) == first
    assert len(api.key_lookups) == 1
    assert first == Principal(id=user.id, roles=("user",), organization_id=user.organization_id)


async def test_an_unknown_or_wrong_secret_is_never_cached(api: ApiProcess, make_user: Callable[..., Any]) -> None:
    user = await make_user("wrong@acme.example.com")
    await api.principal(user.key)
    forged = user.key[:-4] + ("AAAA" if not user.key.endswith("AAAA") else "BBBB")  # same lookup prefix
    for _ in range(3):
        assert await api.refusal(forged) == "invalid_api_key"
    assert len(api.key_lookups) == 4
    assert await api.refusal("sk-ft-" + "x" * 43) == "invalid_api_key"


@pytest.mark.parametrize(
    ("what", "refused_as"),
    [("revoke", "revoked_api_key"), ("expire", "expired_api_key"), ("disable", "account_disabled")],
)
async def test_a_change_is_refused_on_the_very_next_request(  # type: ignore[no-untyped-def]
    api: ApiProcess, make_user, sessionmaker, what: str, refused_as: str
) -> None:
    for round_number in range(ROUNDS):
        user = await make_user(f"{what}-{round_number}@acme.example.com")
        for _ in range(3):
            assert await api.refusal(user.key) is None  # warm: cached after the first
        statements = {
            "revoke": update(ApiKey).where(ApiKey.user_id == user.id).values(revoked_at=utcnow()),
            "expire": update(ApiKey).where(ApiKey.user_id == user.id).values(expires_at=utcnow()),
            "disable": update(User).where(User.id == user.id).values(disabled=True),
        }
        await change(sessionmaker, statements[what])
        assert await api.refusal(user.key) == refused_as, f"round {round_number}: the cache answered"
    assert len(api.key_lookups) == 2 * ROUNDS  # one to warm each key, one after each change


async def test_a_role_change_reaches_the_next_principal(api: ApiProcess, make_user, sessionmaker) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("promoted@acme.example.com")
    assert (await api.principal(user.key)).roles == ("user",)
    await change(sessionmaker, update(User).where(User.id == user.id).values(roles=["user", "operator"]))
    assert (await api.principal(user.key)).roles == ("user", "operator")


async def test_an_expiry_passes_without_any_notice(api: ApiProcess, make_user, sessionmaker) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("expiring@acme.example.com")
    soon = utcnow() + timedelta(seconds=1)
    await change(sessionmaker, update(ApiKey).where(ApiKey.user_id == user.id).values(expires_at=soon))
    assert await api.refusal(user.key) is None
    while utcnow() < soon - timedelta(milliseconds=200):
        assert await api.refusal(user.key) is None
    await asyncio.sleep((soon - utcnow()).total_seconds() + 0.05)
    assert await api.refusal(user.key) == "expired_api_key"
    assert len(api.key_lookups) == 1  # the cached entry carried the expiry


async def test_last_used_is_written_without_emptying_the_cache(api: ApiProcess, make_user, sessionmaker) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("used@acme.example.com")
    await api.principal(user.key)
    async with sessionmaker() as session:
        [last_used] = (await session.scalars(select(ApiKey.last_used_at).where(ApiKey.user_id == user.id))).all()
    assert last_used is not None  # written at the first use
    generation = api.cache.generation
    await change(sessionmaker, update(ApiKey).where(ApiKey.user_id == user.id).values(last_used_at=None))
    await api.principal(user.key)
    assert api.cache.generation == generation  # last_used_at changes send no notice
    assert len(api.key_lookups) == 1


async def test_without_the_checkout_ping_nothing_is_cached(settings: Settings, make_user) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(settings, pool_pre_ping=False)
    try:
        cache = CredentialCache.attach(engine, 30.0)
        assert not cache.enabled
        user = await make_user("unpinged@acme.example.com")
        async with create_sessionmaker(engine)() as session:
            await authenticate(session, settings, cache, f"Bearer {user.key}")
        assert len(cache) == 0
    finally:
        await engine.dispose()
