"""The error responses every admin endpoint documents (one OpenAI-shaped error object)."""

from __future__ import annotations

from typing import Any

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": "OpenAI-shaped error object"} for code in (400, 401, 403, 404, 409, 503)
}
