"""The one definition of a chat and a preference example: roles, fields, and the checks of one line.

Chat SFT lines are `{"messages": [{"role", "content", "weight"?, ...}], "tools"?, "parallel_tool_calls"?}`;
preference lines are `{"input": {"messages", "tools"?}, "preferred_output": [one assistant message],
"non_preferred_output": [one assistant message]}`. Upload validation (app/files/validation.py) and
training (app/training/data.py) both check a parsed line with `ExampleChecker`, so a file the
upload accepted is one training can read, and a bad line gets the same code in both.

Policy: content is text or a non-empty list of text parts; `weight` (0 or 1) only on assistant
messages of chat examples; at least one assistant message with weight 1; only assistant messages
make tool calls, only tool messages carry `tool_call_id`; every key outside the format is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from app.datasets.codes import ErrorCode, Problem

DataFormat = Literal["chat", "preference"]

ROLES = ("system", "user", "assistant", "tool")
CHAT_KEYS = frozenset({"messages", "tools", "parallel_tool_calls"})
PREFERENCE_KEYS = frozenset({"input", "preferred_output", "non_preferred_output"})
PREFERENCE_INPUT_KEYS = frozenset({"messages", "tools", "parallel_tool_calls"})
MESSAGE_KEYS = frozenset({"role", "content", "name", "weight", "tool_calls", "tool_call_id"})
TOOL_KEYS = frozenset({"type", "function"})
FUNCTION_KEYS = frozenset({"name", "description", "parameters", "strict"})


@dataclass(slots=True)
class ExampleTally:
    """What one valid example holds, for the file's statistics."""

    messages: int = 0
    assistant_messages: int = 0
    trained_assistant_messages: int = 0
    characters: int = 0  # the text the model reads: contents, text parts, tool call names and arguments


def describe(value: Any) -> str:
    """A value as a message shows it: short, and with its JSON type when that is the point."""
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if value is None:
        return "null"
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return "a list" if isinstance(value, list) else "an object"


def join_path(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def check_example(example: dict[str, Any], expected: DataFormat) -> list[Problem]:
    """Every problem of a line that must be an `expected` example (a training file of one method)."""
    checker = ExampleChecker()
    found = checker.check(example)
    if found is not None and found != expected:
        message = f"is a {found} example; this file must hold {expected} examples"
        return [Problem(ErrorCode.MIXED_FORMATS, None, message)]
    return checker.problems


class ExampleChecker:
    """Checks one parsed line against the chat or preference schema, collecting every problem."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.tally = ExampleTally()
        self._preference = False

    def problem(self, code: ErrorCode, param: str | None, message: str) -> None:
        self.problems.append(Problem(code, param, message))

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
                f"messages is {describe(messages)}; expected a list",
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
                f"input is {describe(prompt) if 'input' in example else 'missing'}; "
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
            shown = "empty" if messages == [] else describe(messages) if "messages" in prompt else "missing"
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
                shown = describe(output)
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
                f"{key}[0].role is {describe(role)}; a preference output must be an assistant message",
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
                f"{path} is {describe(message)}; expected an object with role and content",
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
                    f"{path} has tool_call_id but role {describe(role)}; only tool messages carry one",
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
                f"{path}.role is {describe(role)}; expected one of {', '.join(ROLES)}",
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
        shown = "an empty list" if content == [] else describe(content)
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
            detail = f"has type {describe(part.get('type'))}; only text parts are supported"
        else:
            detail = f"is {describe(part)}" if not isinstance(part, dict) else "has no string 'text'"
        self.problem(ErrorCode.INVALID_CONTENT, path, f'{path} {detail}; expected {{"type": "text", "text": "..."}}')

    def _check_weight(self, message: dict[str, Any], path: str, role: str | None) -> int:
        """Returns the weight the message trains with (1 when absent)."""
        if "weight" not in message:
            return 1
        weight = message["weight"]
        if self._preference:
            reason = "weight is not used in preference examples; remove it"
        elif role is not None and role != "assistant":
            reason = f"weight is only allowed on assistant messages, not on role {describe(role)}"
        elif type(weight) is not int or weight not in (0, 1):
            reason = f"weight is {describe(weight)}; expected 0 or 1"
        else:
            return weight
        self.problem(ErrorCode.INVALID_WEIGHT, f"{path}.weight", f"{path}.{reason}")
        return 1

    def _check_tool_calls(self, tool_calls: Any, path: str, role: str | None) -> None:
        if role not in (None, "assistant"):
            self.problem(
                ErrorCode.INVALID_TOOL_CALLS,
                path,
                f"{path} is set on role {describe(role)}; only assistant messages make tool calls",
            )
            return
        if not isinstance(tool_calls, list) or not tool_calls:
            shown = "an empty list" if tool_calls == [] else describe(tool_calls)
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
                f"{path}.function.name is {describe(name) if 'name' in function else 'missing'}; "
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
                f"{path} is {describe(arguments)}; expected the arguments as a JSON-encoded string",
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
            param = join_path(prefix, "parallel_tool_calls")
            self.problem(
                ErrorCode.INVALID_FIELD,
                param,
                f"{param} is {describe(holder['parallel_tool_calls'])}; expected true or false",
            )
        if "tools" not in holder:
            return
        tools, path = holder["tools"], join_path(prefix, "tools")
        if not isinstance(tools, list):
            message = f"{path} is {describe(tools)}; expected a list of tools"
            self.problem(ErrorCode.INVALID_TOOLS, path, message)
            return
        for index, tool in enumerate(tools):
            self._check_tool(tool, f"{path}[{index}]")

    def _check_tool(self, tool: Any, path: str) -> None:
        if is_function_tool(tool):
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
            self.problem(ErrorCode.INVALID_FIELD, param, f"{param} is {describe(message[key])}; expected a string")

    def _unexpected_keys(self, holder: dict[str, Any], allowed: frozenset[str], prefix: str) -> None:
        if holder.keys() <= allowed:  # the common case, decided in C
            return
        for key in [key for key in holder if key not in allowed]:
            param = join_path(prefix, key)
            known = ", ".join(sorted(allowed))
            message = f"{param} is not a known field; allowed here: {known}"
            self.problem(ErrorCode.UNEXPECTED_KEY, param, message)


def is_function_tool(tool: Any) -> bool:
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
