"""The one set of error codes of a dataset file: what upload validation reports and training refuses.

`ErrorCode` covers what is wrong with the file or a line on its own; upload validation finds
every one of them, and training reads files through the same checks. `TokenizerErrorCode`
covers what only the base model's tokenizer can find (job validation, training). docs/datasets.md
lists them all with their meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    EMPTY_FILE = "empty_file"
    BINARY_FILE = "binary_file"
    INVALID_UTF8 = "invalid_utf8"
    LINE_TOO_LONG = "line_too_long"
    TOO_MANY_LINES = "too_many_lines"
    BLANK_LINE = "blank_line"
    INVALID_JSON = "invalid_json"
    JSON_TOO_DEEP = "json_too_deep"
    NOT_AN_OBJECT = "not_an_object"
    UNEXPECTED_KEY = "unexpected_key"
    MIXED_FORMATS = "mixed_formats"
    MISSING_MESSAGES = "missing_messages"
    MESSAGES_NOT_A_LIST = "messages_not_a_list"
    EMPTY_MESSAGES = "empty_messages"
    MESSAGE_NOT_AN_OBJECT = "message_not_an_object"
    MISSING_ROLE = "missing_role"
    UNRECOGNIZED_ROLE = "unrecognized_role"
    MISSING_CONTENT = "missing_content"
    INVALID_CONTENT = "invalid_content"
    INVALID_FIELD = "invalid_field"
    INVALID_WEIGHT = "invalid_weight"
    INVALID_TOOLS = "invalid_tools"
    INVALID_TOOL_CALLS = "invalid_tool_calls"
    EXAMPLE_MISSING_ASSISTANT_MESSAGE = "example_missing_assistant_message"
    INVALID_PREFERENCE_FORMAT = "invalid_preference_format"


class TokenizerErrorCode(StrEnum):
    TOKENIZER_MISSING_CHAT_TEMPLATE = "tokenizer_missing_chat_template"  # the whole file (line none)
    CHAT_TEMPLATE_ERROR = "chat_template_error"
    EXAMPLE_TOO_LONG = "example_too_long"  # only when truncation is off


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a line: its code, the JSON path at fault (`param`) and what to do.

    `message` continues "line N: " when there is a param, "line N " when there is none
    (e.g. "is not valid JSON ..."): `text` puts the two together.
    """

    code: ErrorCode
    param: str | None
    message: str

    def text(self, line: int) -> str:
        separator = " " if self.param is None else ": "
        return f"line {line}{separator}{self.message}"
