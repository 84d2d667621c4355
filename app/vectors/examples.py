"""Turn one JSONL training line into the text we embed and the metadata we store.

Chat SFT lines (``{"messages": [...]}``) embed their conversation; DPO lines
(``{"input": {"messages": [...]}, "preferred_output": [...], ...}``) embed the
input plus the preferred answer, since that pair is what the model learns.
System turns are left out of the embedded text by default: datasets often repeat
one long system prompt on every line, which would pull all examples together and
drown the differences a duplicate report is looking for. The exact-duplicate
hash still covers every message, so two lines that differ only in their system
prompt are near duplicates, never exact ones.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXCERPT_CHARS = 300
_WHITESPACE = re.compile(r"\s+")


class ExampleFormatError(ValueError):
    """A line that is neither a chat SFT nor a DPO example."""


@dataclass(frozen=True)
class ExampleText:
    text: str
    role_mix: dict[str, int]
    token_count: int
    text_hash: str

    @property
    def excerpt(self) -> str:
        return self.text[:EXCERPT_CHARS]


@dataclass(frozen=True)
class LineExample:
    line: int
    example: ExampleText


def example_from_record(record: Any, include_system: bool = False) -> ExampleText:
    """The embedded text and metadata of one parsed JSONL record."""
    if not isinstance(record, dict):
        raise ExampleFormatError("a line must be a JSON object")
    if "messages" in record:
        embedded = _message_list(record["messages"], "messages")
        every_message = embedded
    elif "input" in record and "preferred_output" in record:
        source = record["input"]
        if not isinstance(source, dict):
            raise ExampleFormatError("input must be an object with messages")
        prompt = _message_list(source.get("messages"), "input.messages")
        preferred = _message_list(record["preferred_output"], "preferred_output")
        rejected = _message_list(record.get("non_preferred_output", []), "non_preferred_output")
        embedded = prompt + preferred
        every_message = embedded + [{**message, "role": "rejected"} for message in rejected]
    else:
        raise ExampleFormatError("expected messages (chat) or input + preferred_output (DPO)")
    shown = [m for m in embedded if include_system or m.get("role") != "system"]
    full_text = render_messages(every_message)
    return ExampleText(
        text=render_messages(shown),
        role_mix=dict(Counter(str(m.get("role", "unknown")) for m in embedded)),
        token_count=approximate_tokens(render_messages(embedded)),
        text_hash=normalized_hash(full_text),
    )


def render_messages(messages: list[dict[str, Any]]) -> str:
    return "\n".join(f"{message.get('role', 'unknown')}: {message_text(message)}" for message in messages)


def message_text(message: dict[str, Any]) -> str:
    """Content as plain text: string content, text parts, and tool calls as `name(arguments)`."""
    content = message.get("content")
    if isinstance(content, str):
        pieces = [content]
    elif isinstance(content, list):
        pieces = [str(part.get("text", "")) for part in content if isinstance(part, dict)]
    else:
        pieces = []
    for call in message.get("tool_calls") or []:
        function = call.get("function", {}) if isinstance(call, dict) else {}
        pieces.append(f"{function.get('name', '')}({function.get('arguments', '')})")
    return " ".join(piece for piece in pieces if piece)


def approximate_tokens(text: str) -> int:
    """Whitespace words times 4/3: close to BPE token counts for English prose, and free to compute."""
    return round(len(text.split()) * 4 / 3)


def normalize_text(text: str) -> str:
    """Case, Unicode width and whitespace differences do not make two examples different."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _WHITESPACE.sub(" ", folded).strip()


def normalized_hash(text: str) -> str:
    return hashlib.sha256(normalize_text(text).encode()).hexdigest()


def read_examples(path: Path, include_system: bool = False) -> Iterator[LineExample | int]:
    """Every line of a JSONL file: its example, or its 1-based number when it cannot be read.

    Blank lines are skipped silently; upload validation already reported bad lines,
    so here they are only counted, never fatal.
    """
    with path.open("r", encoding="utf-8") as lines:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                yield LineExample(number, example_from_record(json.loads(raw), include_system))
            except (json.JSONDecodeError, ExampleFormatError, AttributeError, TypeError):
                yield number


def _message_list(value: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ExampleFormatError(f"{field} must be a list of message objects")
    return value
