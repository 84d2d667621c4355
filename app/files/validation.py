"""Streaming validation of fine-tuning dataset files (JSONL), run while they upload.

The upload endpoint feeds each received chunk to a `StreamingValidator` as it
writes the chunk to disk, so a file is never held whole in memory: the
validator keeps at most one line (capped at ``max_line_bytes``) plus the first
8 KiB of the file. Every bad line is reported with its line number, a stable
code, the JSON path at fault (``param``) and a message that says what to do.

Policy decisions, so the API and the training side agree:

* One example per line, UTF-8. A UTF-8 byte-order mark at the very start is
  ignored (Windows editors write one); UTF-16/32 files are refused whole.
* Blank (whitespace-only) lines at the end of the file are ignored, so a
  trailing newline or two is fine. A blank line *followed by* an example is a
  ``blank_line`` error: line numbers then always equal example numbers.
* The first line whose format is recognised fixes the file's format (chat or
  preference); a line of the other format is a ``mixed_formats`` error.
* Statistics count only valid examples. ``characters`` is the text the model
  reads: message contents, text parts and tool call names and arguments.
* The first 8 KiB decide whether the file is text at all: a NUL byte, a known
  archive/image signature or mostly control bytes make it ``binary_file``
  (file-level, line 0) and no line is parsed.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

DataFormat = Literal["chat", "preference"]

SNIFF_BYTES = 8192
READ_CHUNK_BYTES = 1024 * 1024
ROLES = ("system", "user", "assistant", "tool")
CHAT_KEYS = frozenset({"messages", "tools", "parallel_tool_calls"})
PREFERENCE_KEYS = frozenset({"input", "preferred_output", "non_preferred_output"})
PREFERENCE_INPUT_KEYS = frozenset({"messages", "tools", "parallel_tool_calls"})
MESSAGE_KEYS = frozenset({"role", "content", "name", "weight", "tool_calls", "tool_call_id"})
TOOL_KEYS = frozenset({"type", "function"})
FUNCTION_KEYS = frozenset({"name", "description", "parameters", "strict"})

_UTF8_BOM = b"\xef\xbb\xbf"
# Signatures of files people upload by mistake; all contain bytes no JSONL file starts with.
_BINARY_SIGNATURES = (
    (b"\x1f\x8b", "a gzip archive"),
    (b"PK\x03\x04", "a zip archive (or an Excel/Word document)"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF-", "a PDF document"),
    (b"PAR1", "a Parquet file"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
_JSONL_ADVICE = "upload a UTF-8 JSONL text file, one JSON example per line"
# Bytes that appear in text; whatever translate() leaves after deleting them is a control byte.
_TEXT_BYTES = bytes([*b"\t\n\r\f\b\x1b", *range(0x20, 0x7F), *range(0x80, 0x100)])
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


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


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    max_line_bytes: int = 4 * 1024 * 1024
    max_lines: int = 5_000_000
    max_json_depth: int = 64
    max_errors_listed: int = 1000


@dataclass(frozen=True, slots=True)
class LineError:
    line: int  # 1-based; 0 for a problem with the file as a whole
    code: str
    message: str
    param: str | None = None  # JSON path at fault, e.g. "messages[2].role"


@dataclass(slots=True)
class ValidationReport:
    ok: bool
    data_format: DataFormat | None
    errors: list[LineError]  # the first `max_errors_listed`, in line order
    error_count: int
    statistics: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class _Problem:
    code: ErrorCode
    param: str | None
    message: str


@dataclass(slots=True)
class _ExampleTally:
    messages: int = 0
    assistant_messages: int = 0
    trained_assistant_messages: int = 0
    characters: int = 0


@dataclass(slots=True)
class _FileTally:
    examples: int = 0
    messages: int = 0
    assistant_messages: int = 0
    characters: int = 0
    max_example_characters: int = 0
    invalid_lines: int = 0
    blank_lines: int = 0

    def add(self, example: _ExampleTally) -> None:
        self.examples += 1
        self.messages += example.messages
        self.assistant_messages += example.assistant_messages
        self.characters += example.characters
        self.max_example_characters = max(self.max_example_characters, example.characters)


def _describe(value: Any) -> str:
    """A value as a message shows it: short, and with its JSON type when that is the point."""
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if value is None:
        return "null"
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return "a list" if isinstance(value, list) else "an object"


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


class _ExampleChecker:
    """Checks one parsed line against the chat or preference schema, collecting every problem."""

    def __init__(self) -> None:
        self.problems: list[_Problem] = []
        self.tally = _ExampleTally()
        self._preference = False

    def problem(self, code: ErrorCode, param: str | None, message: str) -> None:
        self.problems.append(_Problem(code, param, message))

    def check(self, example: dict[str, Any]) -> DataFormat | None:
        if "messages" in example:
            self._check_chat(example)
            return "chat"
        if PREFERENCE_KEYS & example.keys():
            self._preference = True
            self._check_preference(example)
            return "preference"
        legacy = "prompt" in example and "completion" in example
        self.problem(
            ErrorCode.MISSING_MESSAGES,
            "messages",
            ("the legacy prompt/completion format is not supported; " if legacy else "no 'messages' key; ")
            + 'a chat example is {"messages": [...]}, a preference example is '
            '{"input": {"messages": [...]}, "preferred_output": [...], "non_preferred_output": [...]}',
        )
        return None

    def _check_chat(self, example: dict[str, Any]) -> None:
        self._unexpected_keys(example, CHAT_KEYS, "")
        self._check_tool_options(example, "")
        messages = example["messages"]
        if not isinstance(messages, list):
            self.problem(
                ErrorCode.MESSAGES_NOT_A_LIST,
                "messages",
                f"messages is {_describe(messages)}; expected a list",
            )
            return
        if not messages:
            self.problem(ErrorCode.EMPTY_MESSAGES, "messages", "messages is empty; add at least one exchange")
            return
        for index, message in enumerate(messages):
            if not self._count_plain_message(message):
                self._check_message(message, f"messages[{index}]")
        if self.tally.assistant_messages == 0:
            self.problem(
                ErrorCode.EXAMPLE_MISSING_ASSISTANT_MESSAGE,
                "messages",
                "the example has no assistant message; add the reply the model should learn",
            )
        elif self.tally.trained_assistant_messages == 0:
            self.problem(
                ErrorCode.EXAMPLE_MISSING_ASSISTANT_MESSAGE,
                "messages",
                "every assistant message has weight 0, so nothing is learned; set weight 1 on at least one",
            )

    def _check_preference(self, example: dict[str, Any]) -> None:
        self._unexpected_keys(example, PREFERENCE_KEYS, "")
        prompt = example.get("input")
        if not isinstance(prompt, dict):
            self.problem(
                ErrorCode.INVALID_PREFERENCE_FORMAT,
                "input",
                f"input is {_describe(prompt) if 'input' in example else 'missing'}; "
                'expected {"messages": [...]} holding the prompt',
            )
        else:
            self._check_preference_input(prompt)
        for key in ("preferred_output", "non_preferred_output"):
            self._check_preference_output(example, key)

    def _check_preference_input(self, prompt: dict[str, Any]) -> None:
        self._unexpected_keys(prompt, PREFERENCE_INPUT_KEYS, "input")
        self._check_tool_options(prompt, "input")
        messages = prompt.get("messages")
        if not isinstance(messages, list) or not messages:
            shown = "empty" if messages == [] else _describe(messages) if "messages" in prompt else "missing"
            self.problem(
                ErrorCode.INVALID_PREFERENCE_FORMAT,
                "input.messages",
                f"input.messages is {shown}; expected a non-empty list of the prompt's messages",
            )
            return
        for index, message in enumerate(messages):
            if not self._count_plain_message(message):
                self._check_message(message, f"input.messages[{index}]")

    def _check_preference_output(self, example: dict[str, Any], key: str) -> None:
        output = example.get(key)
        if not isinstance(output, list) or len(output) != 1:
            if key not in example:
                shown = "missing"
            elif isinstance(output, list):
                shown = f"a list of {len(output)}"
            else:
                shown = _describe(output)
            self.problem(
                ErrorCode.INVALID_PREFERENCE_FORMAT,
                key,
                f"{key} is {shown}; expected a list holding exactly one assistant message",
            )
            return
        role = self._check_message(output[0], f"{key}[0]")
        if role is not None and role != "assistant":
            self.problem(
                ErrorCode.INVALID_PREFERENCE_FORMAT,
                f"{key}[0].role",
                f"{key}[0].role is {_describe(role)}; a preference output must be an assistant message",
            )

    def _count_plain_message(self, message: Any) -> bool:
        """Accepts and counts a {"role", "content": str} message, the bulk of most files, quickly.

        Everything else, and everything it accepts, `_check_message` would judge the same way.
        """
        if type(message) is not dict or len(message) != 2:
            return False
        role, content = message.get("role"), message.get("content")
        if type(role) is not str or role not in ROLES or type(content) is not str:
            return False
        self.tally.messages += 1
        self.tally.characters += len(content)
        if role == "assistant":
            self.tally.assistant_messages += 1
            self.tally.trained_assistant_messages += 1
        return True

    def _check_message(self, message: Any, path: str) -> str | None:
        """Checks one message and returns its role when the role is valid."""
        if not isinstance(message, dict):
            self.problem(
                ErrorCode.MESSAGE_NOT_AN_OBJECT,
                path,
                f"{path} is {_describe(message)}; expected an object with role and content",
            )
            return None
        self.tally.messages += 1
        self._unexpected_keys(message, MESSAGE_KEYS, path)
        role = self._check_role(message, path)
        has_tool_calls = role == "assistant" and "tool_calls" in message
        self._check_content(message, path, has_tool_calls)
        weight = self._check_weight(message, path, role)
        if role == "assistant":
            self.tally.assistant_messages += 1
            self.tally.trained_assistant_messages += weight != 0
        if "tool_calls" in message:
            self._check_tool_calls(message["tool_calls"], f"{path}.tool_calls", role)
        self._check_string_field(message, "name", path)
        if "tool_call_id" in message:
            self._check_string_field(message, "tool_call_id", path)
            if role not in (None, "tool"):
                self.problem(
                    ErrorCode.INVALID_FIELD,
                    f"{path}.tool_call_id",
                    f"{path} has tool_call_id but role {_describe(role)}; only tool messages carry one",
                )
        return role

    def _check_role(self, message: dict[str, Any], path: str) -> str | None:
        if "role" not in message:
            self.problem(
                ErrorCode.MISSING_ROLE,
                f"{path}.role",
                f'{path} has no role; add "role": one of {", ".join(ROLES)}',
            )
            return None
        role = message["role"]
        if not isinstance(role, str) or role not in ROLES:
            self.problem(
                ErrorCode.UNRECOGNIZED_ROLE,
                f"{path}.role",
                f"{path}.role is {_describe(role)}; expected one of {', '.join(ROLES)}",
            )
            return None
        return role

    def _check_content(self, message: dict[str, Any], path: str, has_tool_calls: bool) -> None:
        content = message.get("content")
        if content is None:
            if not has_tool_calls:
                state = "null" if "content" in message else "missing"
                self.problem(
                    ErrorCode.MISSING_CONTENT,
                    f"{path}.content",
                    f"{path}.content is {state}; give the message's text (only an assistant "
                    "message with tool_calls may leave content null)",
                )
            return
        if isinstance(content, str):
            self.tally.characters += len(content)
            return
        if isinstance(content, list) and content:
            for index, part in enumerate(content):
                self._check_content_part(part, f"{path}.content[{index}]")
            return
        shown = "an empty list" if content == [] else _describe(content)
        self.problem(
            ErrorCode.INVALID_CONTENT,
            f"{path}.content",
            f"{path}.content is {shown}; expected a string or a non-empty list of "
            '{"type": "text", "text": "..."} parts',
        )

    def _check_content_part(self, part: Any, path: str) -> None:
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            self.tally.characters += len(part["text"])
            return
        if isinstance(part, dict) and part.get("type") not in (None, "text"):
            detail = f"has type {_describe(part.get('type'))}; only text parts are supported"
        else:
            detail = f"is {_describe(part)}" if not isinstance(part, dict) else "has no string 'text'"
        self.problem(ErrorCode.INVALID_CONTENT, path, f'{path} {detail}; expected {{"type": "text", "text": "..."}}')

    def _check_weight(self, message: dict[str, Any], path: str, role: str | None) -> int:
        """Returns the weight the message trains with (1 when absent)."""
        if "weight" not in message:
            return 1
        weight = message["weight"]
        if self._preference:
            reason = "weight is not used in preference examples; remove it"
        elif role is not None and role != "assistant":
            reason = f"weight is only allowed on assistant messages, not on role {_describe(role)}"
        elif type(weight) is not int or weight not in (0, 1):
            reason = f"weight is {_describe(weight)}; expected 0 or 1"
        else:
            return weight
        self.problem(ErrorCode.INVALID_WEIGHT, f"{path}.weight", f"{path}.{reason}")
        return 1

    def _check_tool_calls(self, tool_calls: Any, path: str, role: str | None) -> None:
        if role not in (None, "assistant"):
            self.problem(
                ErrorCode.INVALID_TOOL_CALLS,
                path,
                f"{path} is set on role {_describe(role)}; only assistant messages make tool calls",
            )
            return
        if not isinstance(tool_calls, list) or not tool_calls:
            shown = "an empty list" if tool_calls == [] else _describe(tool_calls)
            self.problem(ErrorCode.INVALID_TOOL_CALLS, path, f"{path} is {shown}; expected a non-empty list of calls")
            return
        for index, call in enumerate(tool_calls):
            self._check_tool_call(call, f"{path}[{index}]")

    def _check_tool_call(self, call: Any, path: str) -> None:
        expected = '{"id": "...", "type": "function", "function": {"name": "...", "arguments": "{...}"}}'
        if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
            self.problem(ErrorCode.INVALID_TOOL_CALLS, path, f"{path} is malformed; expected {expected}")
            return
        if call.get("type", "function") != "function" or not isinstance(call.get("id", ""), str):
            self.problem(
                ErrorCode.INVALID_TOOL_CALLS,
                path,
                f"{path} needs a string id and type 'function': {expected}",
            )
        function = call["function"]
        name, arguments = function.get("name"), function.get("arguments")
        if not isinstance(name, str) or not name:
            self.problem(
                ErrorCode.INVALID_TOOL_CALLS,
                f"{path}.function.name",
                f"{path}.function.name is {_describe(name) if 'name' in function else 'missing'}; "
                "expected the called function's name",
            )
        else:
            self.tally.characters += len(name)
        self._check_arguments(arguments, f"{path}.function.arguments")

    def _check_arguments(self, arguments: Any, path: str) -> None:
        if not isinstance(arguments, str):
            self.problem(
                ErrorCode.INVALID_TOOL_CALLS,
                path,
                f"{path} is {_describe(arguments)}; expected the arguments as a JSON-encoded string",
            )
            return
        try:
            json.loads(arguments)
        except (ValueError, RecursionError):
            self.problem(
                ErrorCode.INVALID_TOOL_CALLS,
                path,
                f"{path} is not valid JSON; encode the arguments object as a JSON string",
            )
            return
        self.tally.characters += len(arguments)

    def _check_tool_options(self, holder: dict[str, Any], prefix: str) -> None:
        if "parallel_tool_calls" in holder and not isinstance(holder["parallel_tool_calls"], bool):
            param = _join(prefix, "parallel_tool_calls")
            self.problem(
                ErrorCode.INVALID_FIELD,
                param,
                f"{param} is {_describe(holder['parallel_tool_calls'])}; expected true or false",
            )
        if "tools" not in holder:
            return
        tools, path = holder["tools"], _join(prefix, "tools")
        if not isinstance(tools, list):
            message = f"{path} is {_describe(tools)}; expected a list of tools"
            self.problem(ErrorCode.INVALID_TOOLS, path, message)
            return
        for index, tool in enumerate(tools):
            self._check_tool(tool, f"{path}[{index}]")

    def _check_tool(self, tool: Any, path: str) -> None:
        if _is_function_tool(tool):
            self._unexpected_keys(tool, TOOL_KEYS, path)
            self._unexpected_keys(tool["function"], FUNCTION_KEYS, f"{path}.function")
            return
        self.problem(
            ErrorCode.INVALID_TOOLS,
            path,
            f'{path} is malformed; expected {{"type": "function", "function": {{"name": "...", '
            '"description": "...", "parameters": {JSON schema}}}',
        )

    def _check_string_field(self, message: dict[str, Any], key: str, path: str) -> None:
        if key in message and not isinstance(message[key], str):
            param = f"{path}.{key}"
            self.problem(ErrorCode.INVALID_FIELD, param, f"{param} is {_describe(message[key])}; expected a string")

    def _unexpected_keys(self, holder: dict[str, Any], allowed: frozenset[str], prefix: str) -> None:
        if holder.keys() <= allowed:  # the common case, decided in C
            return
        for key in [key for key in holder if key not in allowed]:
            param = _join(prefix, key)
            known = ", ".join(sorted(allowed))
            message = f"{param} is not a known field; allowed here: {known}"
            self.problem(ErrorCode.UNEXPECTED_KEY, param, message)


def _is_function_tool(tool: Any) -> bool:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        return False
    function = tool.get("function")
    return (
        isinstance(function, dict)
        and isinstance(function.get("name"), str)
        and function["name"] != ""
        and isinstance(function.get("parameters", {}), dict)
        and isinstance(function.get("description", ""), str)
    )


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


def _sniff_binary(window: bytes) -> tuple[ErrorCode, str] | None:
    """Decides from the file's first bytes whether it is text at all."""
    if window.startswith((b"\xff\xfe", b"\xfe\xff")):
        return ErrorCode.INVALID_UTF8, "the file is UTF-16 or UTF-32 encoded; save it as UTF-8"
    for signature, what in _BINARY_SIGNATURES:
        if window.startswith(signature):
            return ErrorCode.BINARY_FILE, f"the file is {what}, not JSONL; {_JSONL_ADVICE}"
    if b"\x00" in window:
        if window[1::2].count(0) > len(window) // 4 or window[0::2].count(0) > len(window) // 4:
            return ErrorCode.INVALID_UTF8, "the file looks UTF-16 encoded; save it as UTF-8"
        return ErrorCode.BINARY_FILE, f"the file holds NUL bytes, so it is binary; {_JSONL_ADVICE}"
    if len(window.translate(None, _TEXT_BYTES)) * 10 > len(window):
        return ErrorCode.BINARY_FILE, f"the file is mostly control bytes, so it is binary; {_JSONL_ADVICE}"
    return None


class StreamingValidator:
    """Validates a JSONL dataset fed in chunks of any size; memory stays bounded by the limits."""

    def __init__(self, limits: ValidationLimits | None = None) -> None:
        self.limits = limits or ValidationLimits()
        self._errors: list[LineError] = []
        self._error_count = 0
        self._tally = _FileTally()
        self._format: DataFormat | None = None
        self._format_line = 0  # the line that fixed the file's format
        self._sniff: bytearray | None = bytearray()
        self._binary = False
        self._bytes = 0
        self._newlines = 0
        self._last_byte = b""
        self._line_number = 1  # the line being accumulated
        self._line_size = 0
        self._buffer = bytearray()
        self._too_long = False
        self._saw_example_line = False
        self._blank_run_start = 0  # first line of the pending run of blank lines, 0 when none
        self._blank_run_length = 0
        self._too_many_reported = False
        self._report: ValidationReport | None = None

    def feed(self, chunk: bytes) -> None:
        if self._report is not None:
            raise RuntimeError("feed() after finish()")
        if not chunk:
            return
        self._bytes += len(chunk)
        self._newlines += chunk.count(b"\n")
        self._last_byte = chunk[-1:]
        if self._sniff is not None:
            # The text/binary decision waits for the first 8 KiB, so chunking cannot change it.
            take = SNIFF_BYTES - len(self._sniff)
            self._sniff += chunk[:take]
            if len(self._sniff) < SNIFF_BYTES:
                return
            self._decide_text()
            if not self._binary:
                self._consume(bytes(chunk), take)
            return
        if not self._binary:
            self._consume(bytes(chunk))

    def finish(self) -> ValidationReport:
        if self._report is not None:
            return self._report
        if self._sniff is not None:
            self._decide_text()
        if not self._binary and (self._line_size or self._too_long):
            self._end_line(bytes(self._buffer))
        self._tally.blank_lines += self._blank_run_length  # trailing blank lines are allowed
        if not self._binary and not self._saw_example_line:
            self._add(0, ErrorCode.EMPTY_FILE, None, "the file has no examples; add one JSON object per line")
        self._report = self._build_report()
        return self._report

    def _decide_text(self) -> None:
        assert self._sniff is not None
        window, self._sniff = bytes(self._sniff), None
        verdict = _sniff_binary(window)
        if verdict is not None:
            self._binary = True
            self._add(0, verdict[0], None, verdict[1])
            return
        self._consume(window)

    def _consume(self, data: bytes, position: int = 0) -> None:
        size = len(data)
        while position < size:
            newline = data.find(b"\n", position)
            end = size if newline < 0 else newline
            if newline >= 0 and not self._line_size and end - position <= self.limits.max_line_bytes:
                # The common case: the whole line sits in this chunk, so skip the buffer.
                self._line_size = end - position
                self._end_line(data[position:end])
            else:
                self._extend_line(data, position, end)
                if newline >= 0:
                    self._end_line(bytes(self._buffer))
            if newline < 0:
                return
            position = newline + 1

    def _extend_line(self, data: bytes, start: int, end: int) -> None:
        self._line_size += end - start
        if self._too_long:
            return
        if self._line_size > self.limits.max_line_bytes:
            # Past the limit the line's bytes are dropped; only its length is still counted.
            self._too_long = True
            self._buffer = bytearray()
            return
        self._buffer += memoryview(data)[start:end]

    def _end_line(self, raw: bytes) -> None:
        line, size = self._line_number, self._line_size
        self._line_number += 1
        self._line_size = 0
        if self._buffer:
            self._buffer = bytearray()
        too_long, self._too_long = self._too_long or size > self.limits.max_line_bytes, False
        if line > self.limits.max_lines:
            self._check_extra_line(line, too_long or bool(raw.strip()))
        elif too_long:
            self._flush_blank_run()
            self._saw_example_line = True
            self._line_failed(
                line,
                [
                    _Problem(
                        ErrorCode.LINE_TOO_LONG,
                        None,
                        f"is {size} bytes long, over the limit of {self.limits.max_line_bytes} bytes "
                        "per line; shorten or split this example",
                    )
                ],
            )
        else:
            self._check_line(line, raw)

    def _check_extra_line(self, line: int, has_text: bool) -> None:
        if has_text and not self._too_many_reported:
            self._too_many_reported = True
            self._add(
                line,
                ErrorCode.TOO_MANY_LINES,
                None,
                f"line {line}: the file has more than {self.limits.max_lines} lines, the limit; "
                "split it into several files",
            )

    def _check_line(self, line: int, raw: bytes) -> None:
        if line == 1 and raw.startswith(_UTF8_BOM):
            raw = raw[len(_UTF8_BOM) :]
        if not raw.strip():
            if not self._blank_run_length:
                self._blank_run_start = line
            self._blank_run_length += 1
            return
        self._flush_blank_run()
        self._saw_example_line = True
        parsed = self._parse(raw)
        if isinstance(parsed, _Problem):
            self._line_failed(line, [parsed])
            return
        self._check_example(line, parsed)

    def _parse(self, raw: bytes) -> dict[str, Any] | _Problem:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            return _Problem(
                ErrorCode.INVALID_UTF8,
                None,
                f"is not valid UTF-8 (bad byte at offset {error.start}); save the file as UTF-8",
            )
        try:
            value = _DECODER.decode(text)
        except RecursionError:
            return self._too_deep()
        except json.JSONDecodeError as error:
            return _Problem(
                ErrorCode.INVALID_JSON,
                None,
                f"is not valid JSON ({error.msg} at column {error.colno}); each line must be one complete JSON object",
            )
        except _ConstantNotAllowed as error:
            return _Problem(ErrorCode.INVALID_JSON, None, f"is not valid JSON: {error}")
        except ValueError:  # Python refuses to convert integers of more than 4300 digits
            return _Problem(ErrorCode.INVALID_JSON, None, "holds a number with too many digits; write it as a string")
        max_depth = self.limits.max_json_depth
        # Counting brackets is C-fast; only a line that could be too deep pays for the walk.
        if text.count("{") + text.count("[") > max_depth and _deeper_than(value, max_depth):
            return self._too_deep()
        if not isinstance(value, dict):
            return _Problem(
                ErrorCode.NOT_AN_OBJECT,
                None,
                f"is {_describe(value)}, not a JSON object; write one example object per line",
            )
        if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
            return _Problem(
                ErrorCode.INVALID_UTF8,
                None,
                "holds an escaped lone UTF-16 surrogate (\\ud800-\\udfff), which is not text",
            )
        return value

    def _too_deep(self) -> _Problem:
        return _Problem(
            ErrorCode.JSON_TOO_DEEP,
            None,
            f"nests JSON deeper than {self.limits.max_json_depth} levels; flatten the example",
        )

    def _check_example(self, line: int, example: dict[str, Any]) -> None:
        checker = _ExampleChecker()
        line_format = checker.check(example)
        if line_format is not None and self._format is None:
            self._format, self._format_line = line_format, line
        elif line_format is not None and line_format != self._format:
            message = (
                f"is a {line_format} example, but the file holds {self._format} examples "
                f"(line {self._format_line} is one); "
                "use one format per file"
            )
            self._line_failed(line, [_Problem(ErrorCode.MIXED_FORMATS, None, message)])
            return
        if checker.problems:
            self._line_failed(line, checker.problems)
            return
        self._tally.add(checker.tally)

    def _flush_blank_run(self) -> None:
        start, length = self._blank_run_start, self._blank_run_length
        if not length:
            return
        self._blank_run_length = 0
        self._tally.blank_lines += length
        self._tally.invalid_lines += length
        for line in range(start, start + min(length, self._room_left())):
            self._add_listed(line, ErrorCode.BLANK_LINE, None, self._blank_message(line))
        self._error_count += length  # a run of millions stays a counter, not a loop

    def _blank_message(self, line: int) -> str:
        return f"line {line} is blank; remove blank lines between examples (only the end may have them)"

    def _line_failed(self, line: int, problems: list[_Problem]) -> None:
        self._tally.invalid_lines += 1
        for problem in problems:
            separator = " " if problem.param is None else ": "
            message = f"line {line}{separator}{problem.message}"
            self._add(line, problem.code, problem.param, message)

    def _add(self, line: int, code: ErrorCode, param: str | None, message: str) -> None:
        self._error_count += 1
        if self._room_left():
            self._add_listed(line, code, param, message)

    def _add_listed(self, line: int, code: ErrorCode, param: str | None, message: str) -> None:
        self._errors.append(LineError(line=line, code=code, message=message, param=param))

    def _room_left(self) -> int:
        return max(0, self.limits.max_errors_listed - len(self._errors))

    def _build_report(self) -> ValidationReport:
        trailing = 1 if self._bytes and not self._ends_with_newline() else 0
        statistics = {
            "format": self._format,
            "examples": self._tally.examples,
            "messages": self._tally.messages,
            "assistant_messages": self._tally.assistant_messages,
            "characters": self._tally.characters,
            "max_example_characters": self._tally.max_example_characters,
            "bytes": self._bytes,
            "lines": self._newlines + trailing,
            "blank_lines": self._tally.blank_lines,
            "invalid_lines": self._tally.invalid_lines,
        }
        return ValidationReport(
            ok=self._error_count == 0,
            data_format=self._format,
            errors=self._errors,
            error_count=self._error_count,
            statistics=statistics,
        )

    def _ends_with_newline(self) -> bool:
        return self._last_byte == b"\n"


def validate_path(path: str | Path, limits: ValidationLimits | None = None) -> ValidationReport:
    """Validates a file on disk the same way an upload is validated, one chunk at a time."""
    validator = StreamingValidator(limits)
    with open(path, "rb") as stream:
        while chunk := stream.read(READ_CHUNK_BYTES):
            validator.feed(chunk)
    return validator.finish()
