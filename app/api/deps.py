"""Dependency aliases shared by the endpoints of both APIs.

Every dependency here is `async def`: FastAPI runs a plain `def` dependency in a worker thread,
a thread hop per dependency per request for what is an attribute read. And each reads the
process's objects from `request.app.state` itself rather than through another dependency: FastAPI
solves every node of a route's dependency tree on every request (its cache key, its scope, its
call), about a fifth of a cheap read's time in the API process when the tree had nine nodes
(py-spy, docs/evidence.md §8, session 34).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import Authorizer, Principal
from app.authz.resources import Resources
from app.core.config import Settings
from app.core.database import session_scope
from app.users.authentication import authenticate
from app.users.credential_cache import CredentialCache


def _resources(request: Request) -> Resources:
    return request.app.state.resources  # type: ignore[no-any-return]


async def get_resources(request: Request) -> Resources:
    return _resources(request)


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async for session in session_scope(_resources(request).sessionmaker):
        yield session


# scope="function": commit (and run after-commit hooks) before the response leaves, so a client
# that got a 2xx can rely on the change being durable and visible to its next request.
# One session per request: authentication and the handler share it (FastAPI solves it once).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_settings_dep(request: Request) -> Settings:
    return _resources(request).settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_authorizer(request: Request) -> Authorizer:
    return _resources(request).authorizer


AuthzDep = Annotated[Authorizer, Depends(get_authorizer)]


# Declares the scheme in both OpenAPI documents (clients and fuzzers learn that every operation needs a key);
# `authenticate` reads the raw header itself, so a malformed one gets its own message rather than FastAPI's.
bearer_scheme = HTTPBearer(auto_error=False, description="A platform API key: `Authorization: Bearer sk-ft-...`")


async def get_principal(
    request: Request,
    session: SessionDep,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    credentials: CredentialCache = request.app.state.credentials
    principal = await authenticate(session, _resources(request).settings, credentials, authorization)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
