"""A run's totals, always recomputed from its stored output items (so a resumed run never counts twice)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.evals.tables import EvalOutputItem


def result_counts(items: Sequence[EvalOutputItem]) -> dict[str, int]:
    statuses = [item.status for item in items]
    return {
        "total": len(statuses),
        "errored": statuses.count("error"),
        "failed": statuses.count("fail"),
        "passed": statuses.count("pass"),
    }


def per_criteria(criteria: Sequence[dict[str, Any]], items: Sequence[EvalOutputItem]) -> list[dict[str, Any]]:
    """Passed and failed items per criterion (OpenAI names each by its id; an errored grade is a fail)."""
    tallies: dict[str, list[int]] = {criterion["name"]: [0, 0] for criterion in criteria}
    for item in items:
        for result in item.results:
            tally = tallies.get(str(result.get("name")))
            if tally is not None:
                tally[0 if result.get("passed") else 1] += 1
    return [
        {
            "testing_criteria": criterion.get("id", criterion["name"]),
            "passed": tallies[criterion["name"]][0],
            "failed": tallies[criterion["name"]][1],
        }
        for criterion in criteria
    ]


def per_model_usage(items: Sequence[EvalOutputItem]) -> list[dict[str, Any]]:
    """Tokens per model: the sampled model's (each item's sample) and the judges' (model graders' results)."""
    usage: dict[str, list[int]] = {}

    def add(model: str | None, counts: dict[str, Any] | None) -> None:
        if not model or not counts:
            return
        tally = usage.setdefault(model, [0, 0, 0])
        tally[0] += 1
        tally[1] += int(counts.get("prompt_tokens", 0))
        tally[2] += int(counts.get("completion_tokens", 0))

    for item in items:
        if item.sample.get("model") and item.sample.get("usage", {}).get("total_tokens"):
            add(item.sample["model"], item.sample["usage"])
        for result in _with_nested(item.results):
            add(result.get("model"), result.get("usage") or (result.get("sample") or {}).get("usage"))
    return [
        {
            "model_name": model,
            "invocation_count": calls,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "cached_tokens": 0,
        }
        for model, (calls, prompt, completion) in sorted(usage.items())
    ]


def totals(criteria: Sequence[dict[str, Any]], items: Sequence[EvalOutputItem]) -> dict[str, Any]:
    return {
        "result_counts": result_counts(items),
        "per_testing_criteria_results": per_criteria(criteria, items),
        "per_model_usage": per_model_usage(items),
    }


def _with_nested(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each result and, for a multi grader, its sub-graders' results (a judge inside one spends tokens too)."""
    found = []
    for result in results:
        found.append(result)
        nested = (result.get("sample") or {}).get("results")
        if result.get("type") == "multi" and isinstance(nested, dict):
            found += _with_nested(list(nested.values()))
    return found
