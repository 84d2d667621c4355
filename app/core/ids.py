"""Object ids in OpenAI's style whose sort order is creation order.

The first 12 hex digits are milliseconds since the epoch and the next 3 a
per-process sequence, so ``ORDER BY id`` is ``ORDER BY created`` (strictly, for ids
made by one process) and an ``after`` cursor is a plain ``id < :after``.
"""

from __future__ import annotations

import secrets
import threading
import time

_lock = threading.Lock()
_last = (0, 0)  # (milliseconds, sequence) of the newest id this process made


def new_id(prefix: str) -> str:
    """Strictly increasing within a process, even for ids made in the same millisecond."""
    global _last
    with _lock:
        millis = max(time.time_ns() // 1_000_000, _last[0])
        sequence = _last[1] + 1 if millis == _last[0] else 0
        if sequence > 0xFFF:  # 4096 ids in one millisecond: borrow the next millisecond
            millis, sequence = millis + 1, 0
        _last = (millis, sequence)
    return f"{prefix}{millis:012x}{sequence:03x}{secrets.token_hex(5)}"


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


def eval_id() -> str:
    return new_id("eval_")


def eval_run_id() -> str:
    return new_id("evalrun_")


def output_item_id() -> str:
    return new_id("outputitem_")
