"""Small SQL helpers shared by the admin repositories."""

from __future__ import annotations


def contains_pattern(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, with its own wildcards taken literally (escape '\\')."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
