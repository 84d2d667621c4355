"""Schemathesis hooks (SCHEMATHESIS_HOOKS=tests.fuzz.hooks): tenant isolation as a check of its own.

Schemathesis' own object-level check compares what peers read of objects a run created; the
seeded objects of another organization are known beforehand, so every successful answer to
the fuzzing user is searched for their identifiers as well.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis


def _foreign_ids() -> list[str]:
    return list(json.loads(os.environ.get("FUZZ_FOREIGN_IDS", "[]")))


@schemathesis.check
def foreign_objects_stay_hidden(ctx: Any, response: Any, case: Any) -> bool | None:
    """No successful answer to the fuzzing user names an object of another organization."""
    foreign = _foreign_ids()
    if not foreign or not 200 <= response.status_code < 300:
        return None
    body = response.content.decode("utf-8", "replace") if response.content else ""
    leaked = sorted(identifier for identifier in foreign if identifier in body)
    if leaked:
        raise AssertionError(f"{case.method} {case.formatted_path} answered with another tenant's objects: {leaked}")
    return None
