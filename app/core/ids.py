"""Object ids in OpenAI's style whose sort order is creation order.

The first 12 hex digits are milliseconds since the epoch, so ``ORDER BY id``
is ``ORDER BY created`` and an ``after`` cursor is a plain ``id < :after``.
"""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    millis = time.time_ns() // 1_000_000
    return f"{prefix}{millis:012x}{secrets.token_hex(6)}"


def file_id() -> str:
    return new_id("file-")


def job_id() -> str:
    return new_id("ftjob-")


def event_id() -> str:
    return new_id("ftevent-")


def checkpoint_id() -> str:
    return new_id("ftckpt_")


def user_id() -> str:
    return new_id("user-")


def organization_id() -> str:
    return new_id("org-")


def api_key_id() -> str:
    return new_id("key_")


def model_row_id() -> str:
    return new_id("model_")
