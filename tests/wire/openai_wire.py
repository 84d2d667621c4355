"""OpenAI's own schemas (vendored from openai/openai-openapi) as JSON Schema validators.

The document is OpenAPI 3.1 in name, but several of its schemas still use OpenAPI 3.0 forms
that JSON Schema reads differently or not at all; `to_json_schema` turns them into their
JSON Schema 2020-12 meaning:

- `nullable: true` (3.0) admits null: `"null"` joins `type` (and `enum`, where there is one),
  or, with no `type`, the schema becomes `anyOf: [schema, {"type": "null"}]`;
- `exclusiveMinimum: true` / `exclusiveMaximum: true` (3.0 booleans beside `minimum` /
  `maximum`) become the 2020-12 numeric bounds;
- `#/components/schemas/X` references point into `$defs`;
- `x-…` extensions and OpenAPI's `discriminator` are annotations only, and dropped;
- JSON Schema 2019-09's `$recursiveRef: "#"` (CompoundFilter) becomes a `$ref` to its own component.

One deliberate amendment, `AMENDMENTS` below: the spec's FineTuningJob `status` enum lists no
`paused`, yet its own pause example answers `"status": "paused"` (and OpenAI's API does).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

VENDORED = Path(__file__).with_name("openai_schemas.json")
REF_PREFIX = "#/components/schemas/"
# (schema, property, value added to its enum, why): kept small, and each one argued.
AMENDMENTS = (("FineTuningJob", "status", "paused", "the spec's pauseFineTuningJob example answers status 'paused'"),)
# (schema, path to a `oneOf`, why) read as `anyOf`: alternatives that overlap, so no value matches exactly one.
ANY_OF = (
    ("CreateEvalCompletionsRunDataSource",
     ("properties", "input_messages", "oneOf", 0, "properties", "template", "items"),
     "a template message {role, content} is both an EasyInputMessage and an EvalItem"),
)  # fmt: skip
# (schema, property path, why) admitted as null: the spec requires an object where OpenAI's own examples answer null.
NULLABLE = (
    ("EvalRun", ("error",), 'a run without an error: the spec\'s run examples answer "error": null'),
    ("EvalRunOutputItem", ("sample", "error"), "an item sampled without an error: the examples answer null"),
    ("EvalRunOutputItem", ("sample", "max_completion_tokens"), "no cap asked: the model's context is the cap"),
)


def to_json_schema(node: Any, name: str = "") -> Any:
    """One OpenAPI schema object (the component `name`) as JSON Schema 2020-12 (see the module docstring)."""
    if isinstance(node, list):
        return [to_json_schema(item, name) for item in node]
    if not isinstance(node, dict):
        return node
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-") or key in ("discriminator", "nullable", "$recursiveAnchor"):
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith(REF_PREFIX):
            converted[key] = "#/$defs/" + value[len(REF_PREFIX) :]
        elif key == "$recursiveRef" and value == "#":  # 2019-09's self reference: the component itself
            converted["$ref"] = f"#/$defs/{name}"
        elif key in ("properties", "patternProperties", "$defs"):
            converted[key] = {prop: to_json_schema(item, name) for prop, item in value.items()}
        else:
            converted[key] = to_json_schema(value, name)
    for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if converted.get(flag) is True:
            converted[flag] = converted.pop(bound)
        elif converted.get(flag) is False:
            del converted[flag]
    if node.get("nullable") is True:
        converted = _admit_null(converted)
    return converted


def _admit_null(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if kind is None:
        return {"anyOf": [schema, {"type": "null"}]}
    kinds = kind if isinstance(kind, list) else [kind]
    schema = {**schema, "type": [*kinds, "null"] if "null" not in kinds else kinds}
    if "enum" in schema and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    return schema


@cache
def vendored() -> dict[str, Any]:
    return json.loads(VENDORED.read_text())  # type: ignore[no-any-return]


@cache
def definitions() -> dict[str, Any]:
    """Every vendored schema, converted, with the amendments applied."""
    converted = {name: to_json_schema(schema, name) for name, schema in vendored()["schemas"].items()}
    for schema, field, value, _ in AMENDMENTS:
        enum = converted[schema]["properties"][field]["enum"]
        if value not in enum:
            enum.append(value)
    for schema, path, _ in ANY_OF:
        node = converted[schema]
        for part in path:
            node = node[part]
        node["anyOf"] = node.pop("oneOf")
    for schema, path, _ in NULLABLE:
        node = converted[schema]
        for part in path[:-1]:
            node = node["properties"][part]
        node["properties"][path[-1]] = {"anyOf": [node["properties"][path[-1]], {"type": "null"}]}
    return converted


@cache
def validator(name: str) -> Draft202012Validator:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": definitions(),
              "$ref": f"#/$defs/{name}"}  # fmt: skip
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def violations(name: str, body: Any) -> list[str]:
    """Each way `body` breaks OpenAI's schema `name`, as `path: message` lines (none when it conforms)."""
    errors: list[ValidationError] = sorted(validator(name).iter_errors(body), key=lambda e: list(e.absolute_path))
    return [f"{name} at /{'/'.join(str(p) for p in error.absolute_path)}: {error.message}" for error in errors]
