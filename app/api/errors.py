"""One error shape for both APIs: OpenAI's `{"error": {...}}`, with the right status for each failure."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.core.database import CONNECTION_LOST_ERRORS
from app.core.errors import PlatformError, ServiceUnavailable
from app.core.logging import request_id_var

logger = logging.getLogger(__name__)

# Errors that mean "a dependency is down right now": answer 503 + Retry-After, never 500.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DBAPIError,
    ConnectionError,
    OSError,
    TimeoutError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
# What PostgreSQL refuses in a value the request carried (a NUL or an unpaired surrogate in text, a number
# out of range): the client's mistake, so 400. Checked before UNAVAILABLE_ERRORS, whose DBAPIError covers it.
REFUSED_VALUE_ERRORS: tuple[type[Exception], ...] = (sa_exc.DataError,)
UNAVAILABLE_ERRORS += CONNECTION_LOST_ERRORS
# asyncpg's server-side class-22 errors, and its client-side encoding errors (which are ValueErrors).
REFUSED_VALUE_ERRORS += (asyncpg.exceptions.DataError, ValueError)
HTTP_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def refused_value(error: BaseException) -> bool:
    """The database refused a value of the request (the driver's error is the cause of SQLAlchemy's)."""
    if isinstance(error, sa_exc.DataError):
        return True
    if not isinstance(error, sa_exc.DBAPIError) or error.orig is None:
        return False
    return isinstance(error.orig.__cause__ or error.orig, REFUSED_VALUE_ERRORS)


def allowed_methods(request: Request) -> str:
    """Every method the path answers to (Starlette names only those of the first route that matched it)."""

    def answers(method: str) -> bool:
        scope = {**request.scope, "method": method}
        return any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes)

    return ", ".join(method for method in HTTP_METHODS if answers(method))


def error_response(error: PlatformError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)


def _param_from_location(location: tuple[Any, ...]) -> str | None:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PlatformError)
    async def platform_error(_: Request, error: PlatformError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "Invalid request"}
        param = _param_from_location(tuple(first.get("loc", ())))
        message = f"{param}: {first['msg']}" if param else str(first["msg"])
        return error_response(PlatformError(message, param=param, code="invalid_request"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # The headers carry meaning (a 405's Allow, a 401's WWW-Authenticate): keep them.
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        wrapped = PlatformError(str(error.detail), code="not_found" if error.status_code == 404 else None,
                                headers=headers)  # fmt: skip
        wrapped.status_code = error.status_code
        return error_response(wrapped)

    async def dependency_error(request: Request, error: Exception) -> JSONResponse:
        if refused_value(error):
            logger.info("the database refused a value of %s %s: %s", request.method, request.url.path, error)
            return error_response(PlatformError(
                "A value in this request cannot be stored: text with NUL or unpaired surrogate characters, "
                "or a number out of range.", code="invalid_value"))  # fmt: skip
        if isinstance(error, UNAVAILABLE_ERRORS):
            logger.warning("dependency unavailable: %s: %s", type(error).__name__, error)
            return error_response(ServiceUnavailable("A platform dependency is unavailable; retry shortly."))
        return await unexpected_error(request, error)

    # Registered per class, these run in the inner exception middleware: the answer is sent and the
    # connection stays usable. An `Exception` handler runs in the outermost one, which re-raises after
    # answering, and uvicorn then closes the connection: during a database outage every 503 was followed
    # by a dropped keep-alive connection (the client's next request failed without any HTTP answer).
    for error_class in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error_class, dependency_error)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        if isinstance(error, UNAVAILABLE_ERRORS):  # raised outside the routes (a middleware)
            return await dependency_error(request, error)
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        internal = PlatformError(f"Internal server error (request id {request_id_var.get()})", code="internal_error")
        internal.status_code, internal.type = 500, "server_error"
        return error_response(internal)
