"""What can go wrong in a command, and the exit codes scripts can rely on."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Exit codes of every command; `jobs watch` maps the job's final status onto the first four."""

    OK = 0
    JOB_FAILED = 1
    JOB_CANCELLED = 2
    JOB_PAUSED = 3
    ERROR = 4


class CliError(Exception):
    """A failure the user can act on: printed as one message (never a traceback), then exit non-zero."""

    exit_code = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def as_json(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": "cli_error", "param": None, "code": None}}


class ApiError(CliError):
    """The API answered with OpenAI's error object `{"error": {message, type, param, code}}`."""

    def __init__(self, status_code: int, url: str, error: dict[str, Any]) -> None:
        message = str(error.get("message") or f"HTTP {status_code}")
        super().__init__(message)
        self.status_code = status_code
        self.url = url
        self.type = error.get("type")
        self.param = error.get("param")
        self.code = error.get("code")
        self.details = error.get("details")

    def line_errors(self) -> list[dict[str, Any]]:
        """The per-line validation report of a rejected file, when the API sent one."""
        if isinstance(self.details, dict) and isinstance(self.details.get("errors"), list):
            return [entry for entry in self.details["errors"] if isinstance(entry, dict)]
        return []

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body, "status": self.status_code, "url": self.url}


class ConnectionFailed(CliError):
    """The API could not be reached at all (refused, DNS, TLS, timeout, dropped)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"Could not reach {url}: {reason}",
            hint="Check --base-url / FINETUNE_BASE_URL and that the API is running.",
        )
        self.url = url

    def as_json(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": "connection_error", "param": None, "code": None},
                "url": self.url}  # fmt: skip
