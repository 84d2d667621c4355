"""One error base class, turned into OpenAI's error shape by one handler.

Services raise these; they never raise HTTPException. Each carries its HTTP
status and OpenAI's `type`, `code` and `param`.
"""

from __future__ import annotations

from typing import Any

from app.core.redaction import user_readable


class PlatformError(Exception):
    status_code = 400
    type = "invalid_request_error"
    code: str | None = None
    # Sent as `x-should-retry`, which the official SDKs obey; None leaves it to their own rule,
    # which retries every 409 and 429: pointless for a state conflict or a spent quota.
    retry: bool | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.details = details
        self.headers = dict(headers or {})
        if self.retry is not None:
            self.headers.setdefault("x-should-retry", "true" if self.retry else "false")

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": user_readable(self.message),
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class BadRequest(PlatformError):
    status_code = 400


class Unauthorized(PlatformError):
    status_code = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class Forbidden(PlatformError):
    status_code = 403
    type = "permission_error"
    code = "forbidden"


class NotFound(PlatformError):
    status_code = 404
    code = "not_found"


class Conflict(PlatformError):
    status_code = 409
    code = "invalid_state"
    retry = False


class PayloadTooLarge(PlatformError):
    status_code = 413
    code = "file_too_large"


class QuotaExceeded(PlatformError):
    status_code = 429
    type = "insufficient_quota"
    code = "quota_exceeded"
    retry = False


class ServiceUnavailable(PlatformError):
    status_code = 503
    type = "server_error"
    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, **kwargs: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **kwargs)


def not_found(kind: str, object_id: str, param: str | None = None) -> NotFound:
    return NotFound(f"No such {kind}: '{object_id}'", param=param)
