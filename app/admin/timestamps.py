"""Times in admin objects are Unix seconds, as in OpenAI's objects on the user API."""

from __future__ import annotations

from datetime import datetime


def unix(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())
