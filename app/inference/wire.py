"""OpenAI's chat completion objects on the wire, taken from the types the `openai` package ships.

Requests are checked field by field against `CompletionCreateParamsBase` (the SDK's own request
type), then against the ranges OpenAI documents; a refusal names its `param`. Answers of the engine
(vLLM adds fields of its own) are cut down to the fields `ChatCompletion` / `ChatCompletionChunk`
declare, so a client sees exactly OpenAI's objects.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, Union

from openai.types.chat import (
    ChatCompletion,
    ChatCompletionAssistantMessageParam,
    ChatCompletionChunk,
    ChatCompletionDeveloperMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionToolMessageParam,
    ChatCompletionUserMessageParam,
)
from openai.types.chat.completion_create_params import CompletionCreateParamsBase
from pydantic import BaseModel, TypeAdapter, ValidationError

from app.core.errors import BadRequest

# What the engine does with each parameter of OpenAI's request: sent on as it is, or accepted and
# not used (they describe the caller or OpenAI's storage, not the generation).
FORWARDED = (
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
    "response_format",
    "stream",
    "stream_options",
)
IGNORED = ("model", "user", "metadata", "safety_identifier", "prompt_cache_key", "service_tier", "store")
# Optional in OpenAI's schema (tests/wire/openai_schemas.json) but never null there.
NOT_NULLABLE_MESSAGE = ("annotations", "function_call", "tool_calls", "role")
NOT_NULLABLE_USAGE = ("prompt_tokens_details", "completion_tokens_details")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
TEXT_PART_TYPES = ("text", "refusal")
RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0, 2),
    "top_p": (0, 1),
    "presence_penalty": (-2, 2),
    "frequency_penalty": (-2, 2),
    "top_logprobs": (0, 20),
    "max_tokens": (1, 2**31 - 1),
    "max_completion_tokens": (1, 2**31 - 1),
    "seed": (-(2**63), 2**63 - 1),
}

_HINTS: dict[str, Any] = typing.get_type_hints(CompletionCreateParamsBase) | {"stream": bool | None}
_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    name: TypeAdapter(_HINTS[name]) for name in (*FORWARDED, "model") if name in _HINTS and name != "messages"
}
# One message type per role (the union's members): an error then names the field, not six guesses.
MESSAGE_TYPES: dict[str, TypeAdapter[Any]] = {
    "developer": TypeAdapter(ChatCompletionDeveloperMessageParam),
    "system": TypeAdapter(ChatCompletionSystemMessageParam),
    "user": TypeAdapter(ChatCompletionUserMessageParam),
    "assistant": TypeAdapter(ChatCompletionAssistantMessageParam),
    "tool": TypeAdapter(ChatCompletionToolMessageParam),
}


def invalid(message: str, param: str | None, code: str = "invalid_value") -> BadRequest:
    return BadRequest(message, param=param, code=code)


def checked_request(body: Any, max_choices: int) -> dict[str, Any]:
    """The request's generation parameters, each of OpenAI's type and range; 400 naming the first bad one."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", None, "invalid_request")
    for name in body:
        if name not in _HINTS:
            raise invalid(f"Unrecognized request argument supplied: {name}", name, "unknown_parameter")
        if name not in FORWARDED and name not in IGNORED:
            raise invalid(f"The parameter '{name}' is not supported by this platform's models.", name,
                          "unsupported_parameter")  # fmt: skip
    for name in ("model", "messages"):
        if body.get(name) is None:
            raise invalid(f"Missing required parameter: '{name}'.", name, "missing_required_parameter")
    request = {name: _typed(name, value) for name, value in body.items() if name in FORWARDED and value is not None}
    _check_ranges(request, max_choices)
    _check_messages(request["messages"])
    if body.get("store"):
        raise invalid("Stored completions are not supported: send store=false or leave it out.", "store",
                      "unsupported_value")  # fmt: skip
    return request


def _typed(name: str, value: Any) -> Any:
    if name == "messages":
        if not isinstance(value, list):
            raise invalid("'messages' must be an array of message objects.", "messages", "invalid_type")
        for index, message in enumerate(value):
            _typed_message(f"messages[{index}]", message)
        return value
    _validate(_ADAPTERS[name], value, name)
    return value


def _typed_message(param: str, message: Any) -> None:
    role = message.get("role") if isinstance(message, dict) else None
    if role not in MESSAGE_TYPES:
        roles = ", ".join(MESSAGE_TYPES)
        raise invalid(f"Invalid value for '{param}.role': {role!r}; expected one of {roles}.", f"{param}.role")
    _validate(MESSAGE_TYPES[role], message, param)
    content = message.get("content")
    if isinstance(content, list):  # declared Iterable, which pydantic checks only when iterated
        for index, part in enumerate(content):
            where = f"{param}.content[{index}]"
            if not isinstance(part, dict) or part.get("type") not in TEXT_PART_TYPES:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise invalid(f"Only text content parts are supported; got {kind!r}.", f"{where}.type",
                              "unsupported_value")  # fmt: skip
            key = part["type"]
            if not isinstance(part.get(key), str):
                raise invalid(f"Invalid value for '{where}.{key}': a string is required.", f"{where}.{key}",
                              "invalid_type")  # fmt: skip


def _validate(adapter: TypeAdapter[Any], value: Any, param: str) -> None:
    try:
        adapter.validate_python(value, strict=True)
    except ValidationError as error:
        first = error.errors()[0]
        # Keep the field path; leave out the names pydantic gives the union members it tried.
        path = [part for part in first["loc"] if isinstance(part, int) or not _is_type_name(str(part))]
        where = param + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
        raise invalid(f"Invalid value for '{where}': {first['msg']}", where, "invalid_type") from None


def _is_type_name(part: str) -> bool:
    return part[:1].isupper() or "[" in part or part in ("str", "int", "float", "bool", "list", "dict")


def _check_ranges(request: dict[str, Any], max_choices: int) -> None:
    for name, (low, high) in RANGES.items():
        value = request.get(name)
        if value is not None and not low <= value <= high:
            raise invalid(f"Invalid '{name}': {value} is outside [{low:g}, {high:g}].", name)
    n = request.get("n", 1)
    if not 1 <= n <= max_choices:
        raise invalid(f"Invalid 'n': {n}; this platform generates between 1 and {max_choices} choices.", "n")
    if "max_tokens" in request and "max_completion_tokens" in request:
        raise invalid("Send max_completion_tokens or max_tokens (its deprecated name), not both.", "max_tokens")
    if "top_logprobs" in request and not request.get("logprobs"):
        raise invalid("'top_logprobs' needs 'logprobs' set to true.", "top_logprobs")
    stop = request.get("stop")
    if isinstance(stop, list) and len(stop) > 4:
        raise invalid("'stop' takes at most 4 sequences.", "stop")
    if "stream_options" in request and not request.get("stream"):
        raise invalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
    response_format = request.get("response_format")
    if response_format is not None and response_format.get("type") not in RESPONSE_FORMATS:
        raise invalid(f"'response_format.type' must be one of {', '.join(RESPONSE_FORMATS)}.", "response_format.type")


def _check_messages(messages: list[dict[str, Any]]) -> None:
    if not messages:
        raise invalid("'messages' must hold at least one message.", "messages", "empty_array")


def engine_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as the chat template reads them: `developer` is OpenAI's newer name for `system`."""
    return [{**message, "role": "system"} if message.get("role") == "developer" else message for message in messages]


# ---- answers ---------------------------------------------------------------------------------


@functools.cache
def _nested_models(model: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    """Declared field -> the one pydantic model its value holds (alone or in a list), if any."""
    nested: dict[str, type[BaseModel] | None] = {}
    for name, field in model.model_fields.items():
        nested[field.alias or name] = _single_model(field.annotation)
    return nested


def _single_model(annotation: Any) -> type[BaseModel] | None:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        models = [found for arg in typing.get_args(annotation) if (found := _single_model(arg)) is not None]
        return models[0] if len(models) == 1 else None  # a union of objects is kept whole
    if origin is list:
        return _single_model(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def declared_only(data: Any, model: type[BaseModel]) -> Any:
    """`data` (engine JSON) with only the fields `model` declares, recursively; values untouched."""
    if isinstance(data, list):
        return [declared_only(item, model) for item in data]
    if not isinstance(data, Mapping):
        return data
    nested = _nested_models(model)
    kept: dict[str, Any] = {}
    for key, value in data.items():
        if key not in nested:
            continue
        submodel = nested[key]
        kept[key] = declared_only(value, submodel) if submodel is not None and value is not None else value
    return kept


def completion_object(data: dict[str, Any], model: str, fingerprint: str) -> dict[str, Any]:
    """The engine's answer as OpenAI's `chat.completion`, naming the model the caller asked for."""
    shaped = declared_only(data, ChatCompletion) | {"model": model, "system_fingerprint": fingerprint}
    for choice in shaped.get("choices", []):
        message = choice.get("message") or {}
        if not message.get("tool_calls"):
            message.pop("tool_calls", None)  # OpenAI leaves the key out when there are none
        _drop_nulls(message, NOT_NULLABLE_MESSAGE)
        _complete_logprobs(choice)
    _drop_nulls(shaped.get("usage") or {}, NOT_NULLABLE_USAGE)
    return ChatCompletion.model_validate(shaped).model_dump(mode="json", exclude_unset=True)


def chunk_object(data: dict[str, Any], model: str, fingerprint: str, with_usage: bool) -> dict[str, Any]:
    """One streamed `chat.completion.chunk` (not validated here: it is on the hot path; tests validate)."""
    shaped = declared_only(data, ChatCompletionChunk) | {"model": model, "system_fingerprint": fingerprint}
    if with_usage:
        shaped.setdefault("usage", None)  # OpenAI: every chunk carries `usage`, null until the last
    else:
        shaped.pop("usage", None)
    for choice in shaped.get("choices", []):
        delta = choice.get("delta") or {}
        if not delta.get("tool_calls"):
            delta.pop("tool_calls", None)
        _drop_nulls(delta, NOT_NULLABLE_MESSAGE)
        _complete_logprobs(choice)
    _drop_nulls(shaped.get("usage") or {}, NOT_NULLABLE_USAGE)
    return shaped


def _complete_logprobs(choice: dict[str, Any]) -> None:
    """OpenAI's logprobs object always has `refusal` (null without one); the engine writes `content` only."""
    logprobs = choice.get("logprobs")
    if isinstance(logprobs, dict):
        logprobs.setdefault("refusal", None)


def _drop_nulls(data: dict[str, Any], keys: tuple[str, ...]) -> None:
    """The SDK's types admit null everywhere; OpenAI's schema does not for these keys, and the engine
    writes null for them: a strict client then sees the key left out, as OpenAI leaves it out."""
    for key in keys:
        if key in data and data[key] is None:
            del data[key]
