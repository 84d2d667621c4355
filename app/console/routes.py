"""Serves the console's files at `/` and `/console/…`, each response with a strict Content-Security-Policy.

The policy is set here, on the console's own responses, so the API's JSON answers keep their own headers.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_ROOT = Path(__file__).parent / "static"

# Scripts and styles only from this origin's files (no inline code, no eval), requests only to this origin,
# no framing, no plugins; Trusted Types with no policy: an HTML string can never reach an HTML sink.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ]
)
CONSOLE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    # Revalidated on every load (ETag / Last-Modified answer 304), so an upgrade is seen at once.
    "Cache-Control": "no-cache",
}


class ConsoleFiles(StaticFiles):
    """StaticFiles whose every answer carries the console's headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(CONSOLE_HEADERS)
        return response


def mount_console(app: FastAPI) -> None:
    """The console page at `/`, its modules, styles and vendored libraries under `/console/`."""
    app.mount("/console", ConsoleFiles(directory=STATIC_ROOT), name="console")

    @app.get("/", include_in_schema=False)
    async def console_page() -> FileResponse:
        return FileResponse(STATIC_ROOT / "index.html", media_type="text/html", headers=CONSOLE_HEADERS)
