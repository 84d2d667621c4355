"""What an eval's data comes from: its data source config (checked at create) and a run's items.

A run's items are `{"item": {...}, "sample": {...}?}` rows: given inline (`file_content`) or read
from an uploaded file (`file_id`). A line of a file is such a row; a line without an `item` key is
taken as the item itself, so a fine-tuning file (chat lines) can be evaluated directly: its item is
then `{"messages": [the prompt], "reference": "the last assistant reply"}`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, SchemaError

from app.core.errors import BadRequest

# What a completions run puts in the `sample` namespace (the schema an eval shows with include_sample_schema).
SAMPLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "model": {"type": "string"},
        "output_text": {"type": "string"},
        "output_json": {"type": "object"},
        "finish_reason": {"type": "string"},
    },
    "required": ["model", "output_text"],
}


def invalid(message: str, param: str | None, code: str = "invalid_value") -> BadRequest:
    return BadRequest(message, param=param, code=code)


def _object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"'{param}' must be an object.", param, "invalid_type")
    return value


def check_data_source_config(body: Any) -> dict[str, Any]:
    """The eval's `data_source_config` as the eval object shows it (OpenAI's `custom` shape)."""
    config = _object(body, "data_source_config")
    kind = config.get("type")
    if kind in ("stored_completions", "logs"):
        raise invalid(
            f"data_source_config type '{kind}' draws items from stored completions, which this platform does "
            "not keep (chat completions are never stored): use type 'custom' with an item_schema.",
            "data_source_config.type",
            "unsupported_value",
        )
    if kind != "custom":
        raise invalid(
            f"Invalid value for 'data_source_config.type': {kind!r}; expected 'custom'.", "data_source_config.type"
        )
    for name in config:
        if name not in ("type", "item_schema", "include_sample_schema"):
            raise invalid(
                f"Unrecognized parameter 'data_source_config.{name}'.",
                f"data_source_config.{name}",
                "unknown_parameter",
            )
    if "item_schema" not in config:
        raise invalid(
            "Missing required parameter: 'data_source_config.item_schema'.",
            "data_source_config.item_schema",
            "missing_required_parameter",
        )
    item_schema = _object(config["item_schema"], "data_source_config.item_schema")
    try:
        Draft202012Validator.check_schema(item_schema)
    except SchemaError as error:
        raise invalid(
            f"'data_source_config.item_schema' is not a valid JSON Schema: {error.message}",
            "data_source_config.item_schema",
        ) from None
    with_sample = config.get("include_sample_schema", False)
    if not isinstance(with_sample, bool):
        raise invalid(
            "'data_source_config.include_sample_schema' must be a boolean.",
            "data_source_config.include_sample_schema",
            "invalid_type",
        )
    schema: dict[str, Any] = {"type": "object", "properties": {"item": item_schema}, "required": ["item"]}
    if with_sample:
        schema["properties"]["sample"] = SAMPLE_SCHEMA
        schema["required"].append("sample")
    return {"type": "custom", "schema": schema}


def item_schema(config: dict[str, Any]) -> dict[str, Any]:
    return dict(config["schema"]["properties"]["item"])


def check_rows(rows: Iterable[Any], config: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """Rows `{"item", "sample"?}` each checked against the eval's item schema; 400 naming the first bad one.

    `where` formats a row's place: "data_source.source.content[{index}]" or "line {line} of file …".
    """
    validator = Draft202012Validator(item_schema(config))
    checked = []
    for index, row in enumerate(rows):
        place = where.format(index=index, line=index + 1)
        if not isinstance(row, dict) or not isinstance(row.get("item"), dict):
            raise invalid(f"{place}: each row must be an object with an 'item' object.", place)
        sample = row.get("sample")
        if sample is not None and not isinstance(sample, dict):
            raise invalid(f"{place}: 'sample' must be an object.", f"{place}.sample", "invalid_type")
        error = next(iter(validator.iter_errors(row["item"])), None)
        if error is not None:
            field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
            raise invalid(
                f"{place}: item{field} does not match the eval's item_schema: {error.message}", f"{place}.item{field}"
            )
        checked.append({"item": row["item"], **({"sample": sample} if sample is not None else {})})
    return checked


def file_rows(path: Path, max_items: int, file_id: str) -> list[dict[str, Any]]:
    """The rows of an uploaded JSONL file (see the module's docstring for a line without `item`)."""
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as error:
                raise invalid(
                    f"line {number} of file {file_id} is not JSON: {error}", "data_source.source.id"
                ) from None
            rows.append(value if isinstance(value, dict) and "item" in value else {"item": as_item(value)})
            if len(rows) > max_items:
                raise invalid(
                    f"file {file_id} has more than {max_items} items, the most one run may hold.",
                    "data_source.source.id",
                )
    return rows


def as_item(line: Any) -> Any:
    """A chat (or preference) training line as an item: the prompt and the reply the model was taught."""
    if not isinstance(line, dict):
        return line
    found = line.get("messages")
    messages: list[Any] = found if isinstance(found, list) else []
    last = messages[-1] if messages else None
    if isinstance(last, dict) and last.get("role") == "assistant":
        return {"messages": messages[:-1], "reference": text_of(last.get("content"))}
    preferred = line.get("preferred_output")
    prompt = (line.get("input") or {}).get("messages") if isinstance(line.get("input"), dict) else None
    if isinstance(prompt, list) and isinstance(preferred, list) and preferred and isinstance(preferred[-1], dict):
        return {"messages": prompt, "reference": text_of(preferred[-1].get("content"))}
    return line


def text_of(content: Any) -> str:
    """A message's text: a string, or the text of its text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, list):
        return "".join(text_of(part) for part in content)
    return ""
