"""Times in admin objects are Unix seconds, as in OpenAI's objects on the user API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import WithJsonSchema

# A time filter: ISO 8601, or Unix seconds as the objects carry them (pydantic reads both). The
# document says so, so that clients and fuzzers know a number is a valid value, not a lenient guess.
TimeFilter = Annotated[
    datetime,
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]},
        mode="validation",
    ),
]


def unix(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())
