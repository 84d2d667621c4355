"""Malformed (and good) dataset files with the exact errors each must produce.

Shared by the validator's unit tests and the upload API tests: an upload of
each `BadFile` must be refused with every `(line, code)` pair of `expected`
listed, in that order. Everything here is deterministic (no clock, no
unseeded randomness), so two calls give byte-identical files.

The huge-line and too-many-lines files are sized from the limits passed in;
`CORPUS_LIMITS` keeps them small. An API test configures its app with the
same limits (settings `max_line_bytes`, `max_lines`, `max_json_depth`) or
passes its app's limits to `bad_file_corpus`.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from typing import Any

from app.files.validation import ValidationLimits

CORPUS_LIMITS = ValidationLimits(max_line_bytes=64 * 1024, max_lines=200, max_json_depth=64)


@dataclass(frozen=True)
class BadFile:
    name: str
    content: bytes
    expected: list[tuple[int, str]]  # (line, code) in report order; line 0 for the file as a whole
    description: str


def line(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8") + b"\n"


def jsonl(*lines: Any) -> bytes:
    """Joins lines; bytes are taken as they are (without a newline added), anything else as JSON."""
    return b"".join(item if isinstance(item, bytes) else line(item) for item in lines)


def user(content: Any = "What is the capital of France?") -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any = "Paris.", **extra: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content, **extra}


def chat(*messages: Any, **extra: Any) -> dict[str, Any]:
    return {"messages": list(messages), **extra}


def good_chat() -> dict[str, Any]:
    return chat({"role": "system", "content": "You answer briefly."}, user(), assistant())


def preference(**overrides: Any) -> dict[str, Any]:
    example: dict[str, Any] = {
        "input": {"messages": [user("Say hi.")]},
        "preferred_output": [assistant("Hi!")],
        "non_preferred_output": [assistant("Go away.")],
    }
    example.update(overrides)
    return example


def tool_call(name: Any = "get_weather", arguments: Any = '{"city": "Paris"}', **extra: Any) -> dict[str, Any]:
    return {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}, **extra}


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def good_chat_file() -> bytes:
    """Five chat examples using every optional feature; statistics asserted in the tests."""
    return jsonl(
        good_chat(),
        chat(user("Hi"), assistant("Hello", weight=0), user("Bye"), assistant("Goodbye", weight=1)),
        chat(
            user("Weather in Paris?"),
            assistant(None, tool_calls=[tool_call()]),
            {"role": "tool", "tool_call_id": "call_1", "content": '{"celsius": 21}'},
            assistant("It is 21 °C in Paris."),
            tools=[WEATHER_TOOL],
            parallel_tool_calls=False,
        ),
        chat(
            user([{"type": "text", "text": "Part one. "}, {"type": "text", "text": "Part two."}]),
            assistant([{"type": "text", "text": "Both parts read."}]),
        ),
        chat(user("Ünïcödé ✓"), {"role": "assistant", "content": "日本語", "name": "helper"}),
    )


def good_preference_file() -> bytes:
    """Three preference (DPO) examples."""
    return jsonl(
        preference(),
        preference(
            input={"messages": [{"role": "system", "content": "Be kind."}, user("Rate my poem.")]},
            preferred_output=[assistant("It has lovely imagery.")],
            non_preferred_output=[assistant("Bad.")],
        ),
        preference(
            input={"messages": [user("Weather?")], "tools": [WEATHER_TOOL], "parallel_tool_calls": True},
            preferred_output=[assistant(None, tool_calls=[tool_call()])],
            non_preferred_output=[assistant("I cannot know.")],
        ),
    )


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def _file_level_corpus() -> list[BadFile]:
    noise = random.Random(7).randbytes(4096)
    return [
        BadFile("empty", b"", [(0, "empty_file")], "a zero-byte file"),
        BadFile("only_blank_lines", b"\n  \n\r\n\t\n", [(0, "empty_file")], "whitespace and newlines only"),
        BadFile(
            "binary_nul_bytes",
            b"\x00\x01\x02\x03" + noise,
            [(1, "binary_file")],
            "random bytes starting with NULs (the first NUL is on line 1)",
        ),
        BadFile(
            "nul_byte_on_line_3",
            jsonl(good_chat(), good_chat(), b'{"messages": [{"role": "user", "content": "a\x00b"}]}\n', good_chat()),
            [(3, "binary_file")],
            "a text file with one NUL byte: reported on the line it is on, not as line 0",
        ),
        BadFile(
            "gzip_archive",
            gzip.compress(good_chat_file(), mtime=0),
            [(0, "binary_file")],
            "a gzipped JSONL file",
        ),
        BadFile(
            "utf16_with_bom",
            good_chat_file().decode("utf-8").encode("utf-16"),
            [(0, "invalid_utf8")],
            "a good file saved as UTF-16 (Windows 'Unicode')",
        ),
    ]


def _encoding_and_syntax_corpus(limits: ValidationLimits) -> list[BadFile]:
    pretty = json.dumps([good_chat()], indent=2).encode() + b"\n"
    pretty_lines = pretty.count(b"\n")
    # Far past Python's recursion limit (1000), yet within max_line_bytes.
    recursion_depth = min(20_000, limits.max_line_bytes // 2 - 1)
    return [
        BadFile(
            "invalid_utf8",
            jsonl(
                good_chat(),
                b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n',
                good_chat(),
                b"\xff\xfe\n",
            ),
            [(2, "invalid_utf8"), (4, "invalid_utf8")],
            "a Latin-1 byte inside a string and a stray byte pair",
        ),
        BadFile(
            "lone_surrogate_escape",
            jsonl(b'{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", "content": "x"}]}\n'),
            [(1, "invalid_utf8")],
            "an escaped lone surrogate parses but is not text",
        ),
        BadFile(
            "invalid_json",
            jsonl(
                b'{"messages": [{"role": "user", "content": "Hi"}\n',
                good_chat(),
                b"{'messages': []}\n",
                b'{"messages": [], }\n',
                line(chat(user(), assistant())).rstrip(b"\n") + b"{}\n",
            ),
            [(1, "invalid_json"), (3, "invalid_json"), (4, "invalid_json"), (5, "invalid_json")],
            "truncated object, single quotes, trailing comma, two objects on one line",
        ),
        BadFile(
            "non_json_numbers",
            jsonl(
                b'{"messages": [{"role": "assistant", "content": "x", "weight": NaN}]}\n',
                b'{"messages": [{"role": "assistant", "content": "x"}], "n": ' + b"7" * 5000 + b"}\n",
            ),
            [(1, "invalid_json"), (2, "invalid_json")],
            "NaN and an integer Python refuses to convert",
        ),
        BadFile(
            "pretty_printed_array",
            pretty,
            [(number, "invalid_json") for number in range(1, pretty_lines + 1)],
            "a JSON array pretty-printed over many lines instead of JSONL",
        ),
        BadFile(
            "json_too_deep",
            jsonl(
                chat(user(), assistant(_nested(limits.max_json_depth + 5))),
                good_chat(),
                b"[" * recursion_depth + b"]" * recursion_depth + b"\n",
            ),
            [(1, "json_too_deep"), (3, "json_too_deep")],
            "nesting past the limit, and nesting deep enough to exhaust Python's recursion",
        ),
        BadFile(
            "not_an_object",
            jsonl([good_chat()], "a string", 42, None, good_chat()),
            [(1, "not_an_object"), (2, "not_an_object"), (3, "not_an_object"), (4, "not_an_object")],
            "JSON values that are not objects",
        ),
    ]


def _size_corpus(limits: ValidationLimits) -> list[BadFile]:
    filler = "x" * (limits.max_line_bytes + 1000)
    return [
        BadFile(
            "line_too_long",
            jsonl(good_chat(), chat(user(filler), assistant()), good_chat(), filler.encode()),
            [(2, "line_too_long"), (4, "line_too_long")],
            "two lines over max_line_bytes, the last without a newline",
        ),
        BadFile(
            "too_many_lines",
            jsonl(*[good_chat()] * (limits.max_lines + 5)),
            [(limits.max_lines + 1, "too_many_lines")],
            "five good lines past max_lines",
        ),
        BadFile(
            "blank_lines_between_examples",
            jsonl(good_chat(), b"\n", b"   \n", good_chat(), b"\n\n"),
            [(2, "blank_line"), (3, "blank_line")],
            "blank lines between examples (the trailing ones are fine)",
        ),
    ]


def _chat_structure_corpus() -> list[BadFile]:
    return [
        BadFile(
            "missing_messages",
            jsonl({"prompt": "2+2=", "completion": "4"}, good_chat(), {}),
            [(1, "missing_messages"), (3, "missing_messages")],
            "the legacy prompt/completion format and an empty object",
        ),
        BadFile(
            "messages_not_a_list",
            jsonl({"messages": user()}, {"messages": "Hello"}, {"messages": None}),
            [(1, "messages_not_a_list"), (2, "messages_not_a_list"), (3, "messages_not_a_list")],
            "messages given as an object, a string and null",
        ),
        BadFile("empty_messages", jsonl(good_chat(), chat()), [(2, "empty_messages")], "messages is []"),
        BadFile(
            "message_not_an_object",
            jsonl(chat("Hello", assistant()), chat(user(), [assistant()], assistant())),
            [(1, "message_not_an_object"), (2, "message_not_an_object")],
            "a message given as a string and one wrapped in a list",
        ),
        BadFile(
            "missing_role",
            jsonl(chat({"content": "Hi"}, assistant()), chat(user(), {"content": "Hello"}, assistant())),
            [(1, "missing_role"), (2, "missing_role")],
            "messages without a role",
        ),
        BadFile(
            "unrecognized_role",
            jsonl(
                chat({"role": "bot", "content": "Hi"}, assistant()),
                chat(user(), {"role": "function", "name": "f", "content": "1"}, assistant()),
                chat({"role": "Assistant", "content": "Hi"}, assistant()),
                chat({"role": 1, "content": "Hi"}, assistant()),
            ),
            [
                (1, "unrecognized_role"),
                (2, "unrecognized_role"),
                (3, "unrecognized_role"),
                (4, "unrecognized_role"),
            ],
            "bot, the legacy function role, wrong case, a number",
        ),
        BadFile(
            "missing_content",
            jsonl(
                chat({"role": "user"}, assistant()),
                chat(user(None), assistant()),
                chat(user(), assistant(None)),
            ),
            [(1, "missing_content"), (2, "missing_content"), (3, "missing_content")],
            "no content, null user content, null assistant content without tool_calls",
        ),
        BadFile(
            "invalid_content",
            jsonl(
                chat(user(42), assistant()),
                chat(user([]), assistant()),
                chat(user([{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]), assistant()),
                chat(user([{"type": "text"}, "plain"]), assistant()),
            ),
            [
                (1, "invalid_content"),
                (2, "invalid_content"),
                (3, "invalid_content"),
                (4, "invalid_content"),
                (4, "invalid_content"),
            ],
            "a number, an empty list, an image part, a part without text and a bare string part",
        ),
        BadFile(
            "example_missing_assistant_message",
            jsonl(
                chat(user()),
                chat({"role": "system", "content": "S"}, user(), assistant(weight=0)),
                good_chat(),
            ),
            [(1, "example_missing_assistant_message"), (2, "example_missing_assistant_message")],
            "no assistant message, and only assistant messages with weight 0",
        ),
        BadFile(
            "invalid_weight",
            jsonl(
                chat(user(), assistant(weight=2)),
                chat(user(), assistant(weight="1")),
                chat({"role": "user", "content": "Hi", "weight": 1}, assistant()),
                chat(user(), assistant(weight=True)),
                chat(user(), assistant(weight=0.5)),
            ),
            [
                (1, "invalid_weight"),
                (2, "invalid_weight"),
                (3, "invalid_weight"),
                (4, "invalid_weight"),
                (5, "invalid_weight"),
            ],
            "weight 2, '1', on a user message, true, 0.5",
        ),
        BadFile(
            "invalid_tool_calls",
            jsonl(
                chat({"role": "user", "content": "Hi", "tool_calls": [tool_call()]}, assistant()),
                chat(user(), assistant(None, tool_calls=[])),
                chat(user(), assistant(None, tool_calls=[tool_call(arguments={"city": "Paris"})])),
                chat(user(), assistant(None, tool_calls=[tool_call(arguments="{city: Paris}")])),
                chat(user(), assistant(None, tool_calls=[tool_call(name="")])),
                chat(user(), assistant(None, tool_calls=["get_weather(Paris)"])),
            ),
            [
                (1, "invalid_tool_calls"),
                (2, "invalid_tool_calls"),
                (3, "invalid_tool_calls"),
                (4, "invalid_tool_calls"),
                (5, "invalid_tool_calls"),
                (6, "invalid_tool_calls"),
            ],
            "tool_calls on a user message, empty, dict arguments, non-JSON arguments, no name, a string",
        ),
        BadFile(
            "invalid_tools_and_fields",
            jsonl(
                chat(user(), assistant(), tools={"get_weather": {}}),
                chat(user(), assistant(), tools=[{"type": "function", "function": {"description": "no name"}}]),
                chat(user(), assistant(), parallel_tool_calls="yes"),
                chat({"role": "user", "content": "Hi", "name": 7}, assistant()),
                chat(user(), assistant(), {"role": "tool", "content": "1", "tool_call_id": 5}),
            ),
            [
                (1, "invalid_tools"),
                (2, "invalid_tools"),
                (3, "invalid_field"),
                (4, "invalid_field"),
                (5, "invalid_field"),
            ],
            "tools as an object, a nameless tool, parallel_tool_calls 'yes', a numeric name and tool_call_id",
        ),
        BadFile(
            "unexpected_key",
            jsonl(
                chat(user(), assistant(), metadata={"source": "crm"}),
                chat({"role": "user", "content": "Hi", "id": "m1"}, assistant()),
                {**preference(), "prompt": "Say hi."},
            ),
            [(1, "unexpected_key"), (2, "unexpected_key"), (3, "mixed_formats")],
            "an unknown top-level key, an unknown message key, then a preference line in a chat file",
        ),
        BadFile(
            "several_errors_in_one_line",
            jsonl(chat({"role": "bot"}, {"content": 5}, assistant(weight=3), extra=True)),
            [
                (1, "unexpected_key"),
                (1, "unrecognized_role"),
                (1, "missing_content"),
                (1, "missing_role"),
                (1, "invalid_content"),
                (1, "invalid_weight"),
            ],
            "every problem of a line is listed, in the order of the line",
        ),
    ]


def _preference_corpus() -> list[BadFile]:
    return [
        BadFile(
            "invalid_preference_format",
            jsonl(
                {"preferred_output": [assistant()], "non_preferred_output": [assistant("No.")]},
                preference(input={"messages": []}),
                preference(preferred_output=[assistant("A"), assistant("B")]),
                preference(non_preferred_output=[user("not an answer")]),
                preference(preferred_output=assistant()),
                preference(input={"prompt": "Say hi."}),
            ),
            [
                (1, "invalid_preference_format"),
                (2, "invalid_preference_format"),
                (3, "invalid_preference_format"),
                (4, "invalid_preference_format"),
                (5, "invalid_preference_format"),
                (6, "unexpected_key"),
                (6, "invalid_preference_format"),
            ],
            "missing input, empty input.messages, two preferred outputs, a user output, an unlisted "
            "output, input without messages",
        ),
        BadFile(
            "preference_message_errors",
            jsonl(
                preference(input={"messages": [{"role": "human", "content": "Hi"}]}),
                preference(preferred_output=[assistant(weight=1)]),
                preference(non_preferred_output=[{"role": "assistant"}]),
            ),
            [(1, "unrecognized_role"), (2, "invalid_weight"), (3, "missing_content")],
            "message rules apply inside preference examples too",
        ),
        BadFile(
            "mixed_formats",
            jsonl(good_chat(), preference(), good_chat(), preference()),
            [(2, "mixed_formats"), (4, "mixed_formats")],
            "preference lines in a file that started as chat",
        ),
        BadFile(
            "mixed_formats_preference_first",
            jsonl(preference(), good_chat()),
            [(2, "mixed_formats")],
            "a chat line in a file that started as preference",
        ),
    ]


# Lines that each produce exactly one error, mixed among good lines below.
_SINGLE_ERROR_LINES: list[tuple[bytes, str]] = [
    (b"not json at all\n", "invalid_json"),
    (line([1, 2, 3]), "not_an_object"),
    (line(chat(user())), "example_missing_assistant_message"),
    (line(chat({"role": "robot", "content": "x"}, assistant())), "unrecognized_role"),
    (line(chat(user(), assistant(weight=5))), "invalid_weight"),
    (line({"text": "hello"}), "missing_messages"),
    (line(chat(user(), assistant(), source="web")), "unexpected_key"),
    (b'{"messages": [{"role": "user", "content": "\xc3\x28"}]}\n', "invalid_utf8"),
]


def many_bad_lines_file(total: int = 150, every: int = 7) -> BadFile:
    rows: list[bytes] = []
    expected: list[tuple[int, str]] = []
    for number in range(1, total + 1):
        if number % every == 3:
            bad, code = _SINGLE_ERROR_LINES[len(expected) % len(_SINGLE_ERROR_LINES)]
            rows.append(bad)
            expected.append((number, code))
        else:
            rows.append(line(good_chat()))
    return BadFile("many_bad_lines", b"".join(rows), expected, f"{len(expected)} bad lines among {total}")


def bad_file_corpus(limits: ValidationLimits = CORPUS_LIMITS) -> list[BadFile]:
    return [
        *_file_level_corpus(),
        *_encoding_and_syntax_corpus(limits),
        *_size_corpus(limits),
        *_chat_structure_corpus(),
        *_preference_corpus(),
        many_bad_lines_file(),
    ]
