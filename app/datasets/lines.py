"""One line of a JSONL dataset file as a JSON object: the rules both upload validation and training apply.

UTF-8 only (a byte-order mark may open the file), strict JSON (no NaN or Infinity, which other
readers refuse), nesting bounded, no escaped lone surrogates (text no tokenizer can encode).
"""

from __future__ import annotations

import json
import re
from typing import Any

from app.datasets.codes import ErrorCode, Problem
from app.datasets.schema import describe

UTF8_BOM = b"\xef\xbb\xbf"
MAX_JSON_DEPTH = 64
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class _ConstantNotAllowed(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, but they are not JSON and other readers refuse them.
    raise _ConstantNotAllowed(f"{name} is not allowed; write numbers as digits or use null")


# One decoder for every line: json.loads(..., parse_constant=...) would build a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _deeper_than(value: Any, max_depth: int) -> bool:
    """Iterative, so a pathological line costs a loop, not the Python stack."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return True
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return False


def _has_lone_surrogate(value: Any) -> bool:
    # Escapes like "\ud800" parse into text that no tokenizer can encode as UTF-8.
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_line(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any] | Problem:
    """The JSON object a line holds, or the problem that keeps it from being one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return Problem(
            ErrorCode.INVALID_UTF8,
            None,
            f"is not valid UTF-8 (bad byte at offset {error.start}); save the file as UTF-8",
        )
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        return _too_deep(max_depth)
    except json.JSONDecodeError as error:
        return Problem(
            ErrorCode.INVALID_JSON,
            None,
            f"is not valid JSON ({error.msg} at column {error.colno}); each line must be one complete JSON object",
        )
    except _ConstantNotAllowed as error:
        return Problem(ErrorCode.INVALID_JSON, None, f"is not valid JSON: {error}")
    except ValueError:  # Python refuses to convert integers of more than 4300 digits
        return Problem(ErrorCode.INVALID_JSON, None, "holds a number with too many digits; write it as a string")
    # Counting brackets is C-fast; only a line that could be too deep pays for the walk.
    if text.count("{") + text.count("[") > max_depth and _deeper_than(value, max_depth):
        return _too_deep(max_depth)
    if not isinstance(value, dict):
        return Problem(
            ErrorCode.NOT_AN_OBJECT,
            None,
            f"is {describe(value)}, not a JSON object; write one example object per line",
        )
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        return Problem(
            ErrorCode.INVALID_UTF8,
            None,
            "holds an escaped lone UTF-16 surrogate (\\ud800-\\udfff), which is not text",
        )
    return value


def _too_deep(max_depth: int) -> Problem:
    return Problem(ErrorCode.JSON_TOO_DEEP, None, f"nests JSON deeper than {max_depth} levels; flatten the example")
