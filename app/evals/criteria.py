"""The checks of an eval's `testing_criteria` at creation, and their normal form on the eval object.

Each criterion is one of OpenAI's graders, with the fields OpenAI documents for it (any other
is refused): `string_check`, `text_similarity` (with the `pass_threshold` evals require),
`score_model` (`range` defaults to [0, 1], `pass_threshold` to its midpoint), `label_model`,
or `multi`, a formula over named sub-graders, which as a criterion needs a `pass_threshold`
(this platform's extension). `python` graders are refused: they run untrusted code, which
this platform does not sandbox. Every refusal names the exact field, as OpenAI's errors do.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from typing import Any
from uuid import uuid4

from app.core.errors import BadRequest
from app.evals import formula
from app.evals.templates import check_template

KEYS = {  # the fields of each grader OpenAI documents
    "string_check": {"type", "name", "input", "reference", "operation"},
    "text_similarity": {"type", "name", "input", "reference", "evaluation_metric", "pass_threshold"},
    "score_model": {"type", "name", "model", "input", "sampling_params", "range", "pass_threshold"},
    "label_model": {"type", "name", "model", "input", "labels", "passing_labels"},
    "multi": {"type", "name", "graders", "calculate_output", "pass_threshold"},
}
OPERATIONS = ("eq", "ne", "like", "ilike")
METRICS = ("cosine", "fuzzy_match", "bleu", "gleu", "meteor", *(f"rouge_{n}" for n in range(1, 6)), "rouge_l")
ROLES = ("user", "assistant", "system", "developer")
TEXT_PARTS = {"input_text": {"type", "text", "prompt_cache_breakpoint"}, "output_text": {"type", "text"}}
SAMPLING_PARAMS = ("seed", "top_p", "temperature", "max_completions_tokens", "reasoning_effort")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
PYTHON_REFUSAL = (
    "python graders run untrusted code, and this platform does not run them: it does not sandbox them "
    "(no isolation from the network or the file system, no CPU, memory or time limits). "
    "Use string_check, text_similarity, score_model, label_model or multi instead."
)


def check_criteria(criteria: Any) -> list[dict[str, Any]]:
    """The `testing_criteria` of `POST /v1/evals`, checked and normalised as the eval object shows them."""
    if not isinstance(criteria, list):
        raise _invalid_type("testing_criteria", criteria, "an array of graders")
    if not criteria:
        raise BadRequest(
            "Invalid 'testing_criteria': empty array. Expected at least one grader.",
            param="testing_criteria",
            code="empty_array",
        )
    checked: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, criterion in enumerate(criteria):
        grader = _check_grader(criterion, f"testing_criteria[{index}]", top_level=True)
        name = grader["name"]
        if name in seen:
            raise BadRequest(
                f"Invalid value for 'testing_criteria[{index}].name': '{name}' is already the name of "
                f"testing_criteria[{seen[name]}]; each criterion needs its own name.",
                param=f"testing_criteria[{index}].name",
                code="invalid_value",
            )
        seen[name] = index
        checked.append({**grader, "id": f"{name}-{uuid4()}"})
    return checked


def judge_models(criteria: list[dict[str, Any]]) -> set[str]:
    """The models the criteria's model graders ask, multi graders' included."""
    models: set[str] = set()
    for criterion in criteria:
        if criterion["type"] in ("score_model", "label_model"):
            models.add(criterion["model"])
        elif criterion["type"] == "multi":
            models |= judge_models(list(criterion["graders"].values()))
    return models


def _check_grader(grader: Any, param: str, *, top_level: bool) -> dict[str, Any]:
    if not isinstance(grader, dict):
        raise _invalid_type(param, grader, "a grader object")
    kind = _string(grader, "type", param)
    if kind == "python":
        raise BadRequest(PYTHON_REFUSAL, param=f"{param}.type", code="unsupported_grader")
    if kind == "multi" and not top_level:
        raise _invalid_value(f"{param}.type", "a multi grader's graders cannot themselves be multi graders")
    if kind not in KEYS:
        supported = ", ".join(f"'{name}'" for name in KEYS)
        raise _invalid_value(f"{param}.type", f"'{kind}' is not a grader type. Supported values are: {supported}")
    _refuse_unknown(grader, KEYS[kind], param)
    return {"type": kind, "name": _string(grader, "name", param), **CHECKS[kind](grader, param)}


def _check_string_check(grader: dict[str, Any], param: str) -> dict[str, Any]:
    return {
        "input": _template(grader, "input", param),
        "reference": _template(grader, "reference", param),
        "operation": _choice(grader, "operation", param, OPERATIONS),
    }


def _check_text_similarity(grader: dict[str, Any], param: str) -> dict[str, Any]:
    return {
        "input": _template(grader, "input", param),
        "reference": _template(grader, "reference", param),
        "evaluation_metric": _choice(grader, "evaluation_metric", param, METRICS),
        "pass_threshold": _threshold(_number(grader, "pass_threshold", param), f"{param}.pass_threshold", 0, 1),
    }


def _check_score_model(grader: dict[str, Any], param: str) -> dict[str, Any]:
    low, high = _range(grader, param)
    threshold = _number(grader, "pass_threshold", param) if "pass_threshold" in grader else (low + high) / 2
    return {
        "model": _string(grader, "model", param),
        "input": _messages(grader, param),
        "sampling_params": _sampling_params(grader.get("sampling_params"), f"{param}.sampling_params"),
        "range": [low, high],
        "pass_threshold": _threshold(threshold, f"{param}.pass_threshold", low, high),
    }


def _check_label_model(grader: dict[str, Any], param: str) -> dict[str, Any]:
    labels = _labels(grader, "labels", param)
    passing = _labels(grader, "passing_labels", param)
    for index, label in enumerate(passing):
        if label not in labels:
            raise _invalid_value(f"{param}.passing_labels[{index}]", f"'{label}' is not one of the labels")
    model, messages = _string(grader, "model", param), _messages(grader, param)
    return {"model": model, "input": messages, "labels": labels, "passing_labels": passing}


def _check_multi(grader: dict[str, Any], param: str) -> dict[str, Any]:
    given = _required(grader, "graders", param)
    if isinstance(given, dict) and isinstance(given.get("type"), str):  # one grader, keyed by its own name
        sub = _check_grader(given, f"{param}.graders", top_level=False)
        graders = {sub["name"]: sub}
    elif isinstance(given, dict) and given:
        graders = {name: _check_grader(sub, f"{param}.graders.{name}", top_level=False) for name, sub in given.items()}
    else:
        raise _invalid_type(f"{param}.graders", given, "a non-empty object mapping names to graders")
    calculate_output = _string(grader, "calculate_output", param)
    formula.check(calculate_output, graders.keys(), f"{param}.calculate_output")
    if "pass_threshold" not in grader:
        raise BadRequest(
            f"Missing required parameter: '{param}.pass_threshold'. A multi grader used as a testing criterion "
            "needs a pass_threshold for its computed score (this platform's extension: OpenAI's multi grader "
            "has none).",
            param=f"{param}.pass_threshold",
            code="missing_required_parameter",
        )
    threshold = _number(grader, "pass_threshold", param)
    return {"graders": graders, "calculate_output": calculate_output, "pass_threshold": threshold}


CHECKS = {
    "string_check": _check_string_check,
    "text_similarity": _check_text_similarity,
    "score_model": _check_score_model,
    "label_model": _check_label_model,
    "multi": _check_multi,
}


def _messages(grader: dict[str, Any], param: str) -> list[dict[str, Any]]:
    messages = _required(grader, "input", param)
    if not isinstance(messages, list) or not messages:
        raise _invalid_type(f"{param}.input", messages, "a non-empty array of messages")
    for index, message in enumerate(messages):
        where = f"{param}.input[{index}]"
        if not isinstance(message, dict):
            raise _invalid_type(where, message, "a message object")
        _refuse_unknown(message, {"role", "content", "type"}, where)
        if "type" in message:
            _choice(message, "type", where, ("message",))
        _choice(message, "role", where, ROLES)
        _check_content(_required(message, "content", where), f"{where}.content")
    return messages


def _check_content(content: Any, param: str, *, in_array: bool = False) -> None:
    if isinstance(content, str):
        check_template(content, param)
    elif isinstance(content, list) and not in_array:
        for index, part in enumerate(content):
            _check_content(part, f"{param}[{index}]", in_array=True)
    elif isinstance(content, dict):
        kind = _string(content, "type", param)
        if kind in ("input_image", "input_audio"):
            raise BadRequest(
                f"Unsupported value: '{param}.type' is '{kind}'; the judges here read text only "
                "(input_text or output_text parts).",
                param=f"{param}.type",
                code="unsupported_value",
            )
        if kind not in TEXT_PARTS:
            raise _invalid_value(f"{param}.type", f"'{kind}'. Supported values are: 'input_text' and 'output_text'")
        _refuse_unknown(content, TEXT_PARTS[kind], param)
        check_template(_string(content, "text", param, empty=True), f"{param}.text")
    else:
        raise _invalid_type(param, content, "a string, a text part or an array of them")


def _sampling_params(params: Any, param: str) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise _invalid_type(param, params, "an object")
    _refuse_unknown(params, SAMPLING_PARAMS, param)
    for key, value in params.items():
        if value is None:
            continue
        if key in ("seed", "max_completions_tokens") and (isinstance(value, bool) or not isinstance(value, int)):
            raise _invalid_type(f"{param}.{key}", value, "an integer")
        if key == "reasoning_effort":
            _choice(params, key, param, REASONING_EFFORTS)
        elif key != "seed":
            bounds = {"top_p": (0, 1), "temperature": (0, 2), "max_completions_tokens": (1, math.inf)}[key]
            _threshold(_number(params, key, param), f"{param}.{key}", *bounds)
    return {key: value for key, value in params.items() if value is not None}


def _range(grader: dict[str, Any], param: str) -> tuple[float, float]:
    given = grader.get("range", [0, 1])
    if not isinstance(given, list) or len(given) != 2:
        raise _invalid_type(f"{param}.range", given, "an array of two numbers [low, high]")
    low, high = (_as_number(value, f"{param}.range[{index}]") for index, value in enumerate(given))
    if not low < high:
        raise _invalid_value(f"{param}.range", f"[{low}, {high}]: the low end must be below the high end")
    return low, high


def _labels(grader: dict[str, Any], key: str, param: str) -> list[str]:
    labels = _required(grader, key, param)
    if not isinstance(labels, list) or not labels:
        raise _invalid_type(f"{param}.{key}", labels, "a non-empty array of strings")
    for index, label in enumerate(labels):
        if not isinstance(label, str) or not label.strip():
            raise _invalid_type(f"{param}.{key}[{index}]", label, "a non-empty string")
        if label in labels[:index]:
            raise _invalid_value(f"{param}.{key}[{index}]", f"'{label}' is listed twice")
    return labels


def _template(grader: dict[str, Any], key: str, param: str) -> str:
    template = _string(grader, key, param, empty=True)
    check_template(template, f"{param}.{key}")
    return template


def _choice(grader: dict[str, Any], key: str, param: str, options: Iterable[str]) -> str:
    value = _string(grader, key, param)
    if value not in options:
        supported = ", ".join(f"'{option}'" for option in options)
        raise _invalid_value(f"{param}.{key}", f"'{value}'. Supported values are: {supported}")
    return value


def _string(grader: dict[str, Any], key: str, param: str, *, empty: bool = False) -> str:
    value = _required(grader, key, param)
    if not isinstance(value, str):
        raise _invalid_type(f"{param}.{key}", value, "a string")
    if not empty and not value.strip():
        raise _invalid_value(f"{param}.{key}", "an empty string; expected a non-empty string")
    return value


def _number(grader: dict[str, Any], key: str, param: str) -> float:
    return _as_number(_required(grader, key, param), f"{param}.{key}")


def _as_number(value: Any, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid_type(param, value, "a number")
    return value


def _threshold(value: float, param: str, low: float, high: float) -> float:
    if not low <= value <= high:
        raise _invalid_value(param, f"{value} is outside [{low}, {high}]")
    return value


def _refuse_unknown(given: dict[str, Any], known: Collection[str], param: str) -> None:
    for key in given:
        if key not in known:
            raise BadRequest(f"Unknown parameter: '{param}.{key}'.", param=f"{param}.{key}", code="unknown_parameter")


def _required(grader: dict[str, Any], key: str, param: str) -> Any:
    if key not in grader:
        raise BadRequest(
            f"Missing required parameter: '{param}.{key}'.", param=f"{param}.{key}", code="missing_required_parameter"
        )
    return grader[key]


def _invalid_type(param: str, value: Any, expected: str) -> BadRequest:
    return BadRequest(
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _invalid_value(param: str, detail: str) -> BadRequest:
    return BadRequest(f"Invalid value for '{param}': {detail}.", param=param, code="invalid_value")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"
