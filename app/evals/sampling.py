"""A run's data source: `jsonl` (samples given) or `completions` (the platform samples a model).

Checked when the run is created; the worker turns each item into a chat completion request
(`request_for`) and the answer into the `sample` namespace the graders read.
"""

from __future__ import annotations

import json
from typing import Any

from app.evals.sources import invalid, text_of
from app.evals.templates import TemplateError, check_template, render

SAMPLING_PARAMS = ("temperature", "max_completion_tokens", "top_p", "seed", "response_format")
MESSAGE_ROLES = ("user", "assistant", "system", "developer")
TEXT_PARTS = ("input_text", "output_text")
DEFAULT_PARAMS: dict[str, Any] = {"temperature": 1.0, "top_p": 1.0, "seed": 42}


def check_data_source(body: Any) -> dict[str, Any]:
    """The run's `data_source`, refused with the field at fault; returned as the run object shows it."""
    if not isinstance(body, dict):
        raise invalid("'data_source' must be an object.", "data_source", "invalid_type")
    kind = body.get("type")
    if kind == "responses":
        raise invalid(
            "data_source type 'responses' samples through the Responses API, which this platform "
            "does not offer: use type 'completions'.",
            "data_source.type",
            "unsupported_value",
        )
    if kind not in ("jsonl", "completions"):
        raise invalid(
            f"Invalid value for 'data_source.type': {kind!r}; expected 'jsonl' or 'completions'.", "data_source.type"
        )
    allowed = (
        ("type", "source") if kind == "jsonl" else ("type", "source", "model", "input_messages", "sampling_params")
    )
    for name in body:
        if name not in allowed:
            raise invalid(
                f"Unrecognized parameter 'data_source.{name}' for a {kind} data source.",
                f"data_source.{name}",
                "unknown_parameter",
            )
    shown: dict[str, Any] = {"type": kind, "source": _check_source(body.get("source"))}
    if kind == "completions":
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise invalid(
                "Missing required parameter: 'data_source.model'.", "data_source.model", "missing_required_parameter"
            )
        shown["model"] = model
        shown["input_messages"] = _check_input_messages(body.get("input_messages"))
        shown["sampling_params"] = _check_sampling(body.get("sampling_params"))
    return shown


def _check_source(source: Any) -> dict[str, Any]:
    if not isinstance(source, dict):
        raise invalid(
            "Missing required parameter: 'data_source.source'.", "data_source.source", "missing_required_parameter"
        )
    kind = source.get("type")
    if kind == "file_content":
        content = source.get("content")
        if not isinstance(content, list) or not content:
            raise invalid(
                "'data_source.source.content' must be a non-empty array of {item, sample} rows.",
                "data_source.source.content",
            )
        return {"type": "file_content", "content": content}
    if kind == "file_id":
        if not isinstance(source.get("id"), str):
            raise invalid(
                "Missing required parameter: 'data_source.source.id'.",
                "data_source.source.id",
                "missing_required_parameter",
            )
        return {"type": "file_id", "id": source["id"]}
    if kind == "stored_completions":
        raise invalid(
            "Stored completions are not kept by this platform: use a file_content or file_id source.",
            "data_source.source.type",
            "unsupported_value",
        )
    raise invalid(
        f"Invalid value for 'data_source.source.type': {kind!r}; expected 'file_content' or 'file_id'.",
        "data_source.source.type",
    )


def _check_input_messages(value: Any) -> dict[str, Any]:
    param = "data_source.input_messages"
    if not isinstance(value, dict):
        raise invalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    if value.get("type") == "item_reference":
        reference = value.get("item_reference")
        if not isinstance(reference, str) or not reference.startswith("item."):
            raise invalid(
                f"'{param}.item_reference' must name a field of the item, like 'item.messages'.",
                f"{param}.item_reference",
            )
        return {"type": "item_reference", "item_reference": reference}
    if value.get("type") != "template":
        raise invalid(f"Invalid value for '{param}.type': expected 'template' or 'item_reference'.", f"{param}.type")
    template = value.get("template")
    if not isinstance(template, list) or not template:
        raise invalid(f"'{param}.template' must be a non-empty array of messages.", f"{param}.template")
    for index, message in enumerate(template):
        where = f"{param}.template[{index}]"
        if not isinstance(message, dict) or message.get("role") not in MESSAGE_ROLES:
            raise invalid(f"'{where}.role' must be one of {', '.join(MESSAGE_ROLES)}.", f"{where}.role")
        for part_param, text in _texts(message.get("content"), f"{where}.content"):
            check_template(text, part_param)
    return {"type": "template", "template": template}


def _texts(content: Any, param: str) -> list[tuple[str, str]]:
    """(param, text) of each text part of a template message's content; other parts are refused."""
    if isinstance(content, str):
        return [(param, content)]
    parts = content if isinstance(content, list) else [content]
    found = []
    for index, part in enumerate(parts):
        where = f"{param}[{index}]" if isinstance(content, list) else param
        if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS or not isinstance(part.get("text"), str):
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise invalid(
                f"'{where}' must be a string or an input_text part; got {kind!r} (only text is supported).",
                where,
                "unsupported_value",
            )
        found.append((f"{where}.text", part["text"]))
    return found


def _check_sampling(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid("'data_source.sampling_params' must be an object.", "data_source.sampling_params", "invalid_type")
    for name in value:
        if name not in SAMPLING_PARAMS:
            raise invalid(
                f"Unsupported parameter 'data_source.sampling_params.{name}'.",
                f"data_source.sampling_params.{name}",
                "unsupported_parameter",
            )
    return dict(value)


def request_for(data_source: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """The chat completion request body of one item (rendered messages plus the sampling params)."""
    params = effective_params(data_source)
    body: dict[str, Any] = {"model": data_source["model"], "messages": messages_for(data_source, item)}
    for name in ("temperature", "top_p", "seed", "response_format"):
        if params.get(name) is not None:
            body[name] = params[name]
    if params.get("max_completion_tokens") is not None:
        body["max_tokens"] = params["max_completion_tokens"]
    return body


def effective_params(data_source: dict[str, Any]) -> dict[str, Any]:
    """The sampling params a run uses: the given ones over OpenAI's documented defaults for eval runs
    (temperature 1, top_p 1, seed 42; no token cap but the model's context)."""
    return DEFAULT_PARAMS | {name: value for name, value in (data_source.get("sampling_params") or {}).items()
                             if value is not None}  # fmt: skip


def messages_for(data_source: dict[str, Any], item: dict[str, Any]) -> list[dict[str, str]]:
    spec = data_source["input_messages"]
    if spec["type"] == "item_reference":
        value: Any = {"item": item}
        for part in spec["item_reference"].split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, list):
            raise TemplateError(f"{spec['item_reference']} is not a list of messages in this item")
        return [
            {"role": str(m.get("role")), "content": text_of(m.get("content"))} for m in value if isinstance(m, dict)
        ]
    return [
        {
            "role": message["role"],
            "content": "".join(render(text, item, None) for _, text in _texts(message["content"], "")),
        }
        for message in spec["template"]
    ]


def sample_of(completion: dict[str, Any], model: str) -> dict[str, Any]:
    """The `sample` namespace of a generated answer: its text, its JSON if it is JSON, and who said it."""
    choice = (completion.get("choices") or [{}])[0]
    text = text_of((choice.get("message") or {}).get("content"))
    sample: dict[str, Any] = {"model": model, "output_text": text, "finish_reason": choice.get("finish_reason")}
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        sample["output_json"] = parsed
    return sample
