"""Both APIs are built the same way: clients and the API-key cache in the lifespan, one error shape,
request context, health."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from app.api.errors import install_error_handlers
from app.api.health import health_routes
from app.api.middleware import RequestContextMiddleware
from app.authz.resources import Resources
from app.core.config import Settings, get_settings
from app.core.logging import configure_logging
from app.users.credential_cache import CredentialCache

# A domain's own clients for the process (entered after the shared ones, left before they close); one may
# add /ready checks under resources.extras["ready_checks"].
Extension = Callable[[Resources], AbstractAsyncContextManager[None]]


def create_app(
    title: str,
    api_name: str,
    routers: list[Any],
    settings: Settings | None = None,
    extensions: Sequence[Extension] = (),
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        current = settings or get_settings()
        configure_logging(current.log_level)
        app.state.resources = Resources.create(current)
        # Attached before the first query, so every pooled connection listens for key changes.
        app.state.credentials = CredentialCache.attach(app.state.resources.engine, current.credential_cache_seconds)
        try:
            await app.state.resources.authorizer.connect()
            async with AsyncExitStack() as stack:
                for extension in extensions:
                    await stack.enter_async_context(extension(app.state.resources))
                yield
        finally:
            await app.state.resources.close()

    # No 307 to the other spelling of a path (a trailing slash added or removed): clients that follow it
    # may switch host or drop the body. `/v1/files/` is not a route, so it answers the one 404 shape.
    app = FastAPI(title=title, version="0.1.0", lifespan=lifespan, redirect_slashes=False)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, api_name=api_name)
    health_routes(app)
    for router in routers:
        app.include_router(router)
    return app
