"""`{{item.a.b}}` and `{{sample.output_text}}` placeholders of graders' templates.

A placeholder names a namespace (`item`: the data source row, `sample`: the model's output
for it) and a dotted path into it; a path part that is an integer indexes a list. A bare
namespace (`{{item}}`) stands for the whole object. A string value is inserted as is, any
other value as compact JSON, so `{{item.tags}}` renders `["a","b"]`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from app.core.errors import BadRequest

NAMESPACES = ("item", "sample")
PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
# A namespace, then dot-separated parts that hold no whitespace, dots or braces.
EXPRESSION = re.compile(r"([A-Za-z_]\w*)((?:\.[^\s.{}]+)*)")


class TemplateError(ValueError):
    """A template that does not render: a malformed placeholder or a path the data lacks."""


def references(template: str) -> list[tuple[str, str]]:
    """The (namespace, path) pairs a template names, in order; path "" is the whole namespace."""
    return [_parse(match.group(1)) for match in PLACEHOLDER.finditer(template)]


def check_template(template: str, param: str) -> None:
    """Refuse a template whose placeholders are malformed or name a namespace other than item/sample."""
    try:
        for namespace, _ in references(template):
            if namespace not in NAMESPACES:
                raise TemplateError(
                    f"the template refers to '{namespace}'; placeholders name 'item' (the data source row) "
                    "or 'sample' (the model's output), as in {{item.label}} or {{sample.output_text}}"
                )
        _check_unclosed(template)
    except TemplateError as error:
        raise BadRequest(f"Invalid template in '{param}': {error}.", param=param, code="invalid_template") from error


def render(template: str, item: Mapping[str, Any], sample: Mapping[str, Any] | None) -> str:
    """The template with every placeholder replaced by the value it names; TemplateError if one is missing."""
    _check_unclosed(template)
    roots: dict[str, Mapping[str, Any] | None] = {"item": item, "sample": sample}

    def substitute(match: re.Match[str]) -> str:
        namespace, path = _parse(match.group(1))
        if namespace not in roots:
            raise TemplateError(f"{match.group(0)} names '{namespace}'; only 'item' and 'sample' exist")
        value = _resolve(roots[namespace], namespace, path, match.group(0))
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    return PLACEHOLDER.sub(substitute, template)


def _parse(expression: str) -> tuple[str, str]:
    parsed = EXPRESSION.fullmatch(expression.strip())
    if parsed is None:
        shown = "{{" + expression + "}}"
        raise TemplateError(f"{shown} is not a placeholder; write {{{{item.field}}}} or {{{{sample.output_text}}}}")
    return parsed.group(1), parsed.group(2).removeprefix(".")


def _check_unclosed(template: str) -> None:
    # What is left once the placeholders are cut out must hold no "{{": it opens one never closed.
    if "{{" in PLACEHOLDER.sub("", template):
        raise TemplateError("a '{{' is never closed by '}}'")


def _resolve(root: Mapping[str, Any] | None, namespace: str, path: str, shown: str) -> Any:
    if root is None:
        raise TemplateError(f"{shown} refers to the sample, and there is no sample to grade")
    value: Any = root
    walked = namespace
    for part in path.split(".") if path else ():
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise TemplateError(f"{shown} does not resolve: {walked} has no {_describe_part(value, part)}")
        walked = f"{walked}.{part}"
    return value


def _describe_part(value: Any, part: str) -> str:
    if isinstance(value, list):
        return f"index {part} (it is a list of {len(value)})"
    if isinstance(value, Mapping):
        return f"key '{part}'"
    return f"'{part}' (it is {json.dumps(value, ensure_ascii=False)[:40]}, not an object)"
