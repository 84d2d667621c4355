"""The Python examples of README.md and docs/*.md, run as written.

An example runs with only what a reader would change before running it: its placeholders
(the server's address, an API key, an id) replaced by a real stack's, and, for an example that
shows a fragment of a larger program, the names the text around it defines (`given`). Each
replacement must occur in the example, so an edited example cannot slip past its test; top-level
`await` is allowed, as in an asyncio REPL.

`RUNS` says which test runs each example: an example that no test claims fails
tests/docs/test_examples.py::test_every_python_example_is_run_by_a_test.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
# "<file>#<n>" (the n-th Python block of the file, from 1) -> the test that runs it.
RUNS = {
    "README.md#1": "tests/docs/test_examples.py::test_readme_sdk_example",
    "docs/training.md#1": "tests/docs/test_examples.py::test_training_progress_example",
    "docs/serving.md#1": "tests/inference/test_chat.py::test_fine_tuned_models_answer_their_facts_through_the_sdk",
    "docs/serving.md#2": "tests/inference/test_chat.py::test_fine_tuned_models_answer_their_facts_through_the_sdk",
    "docs/evals.md#1": "tests/evals/test_evals_api.py::test_jsonl_runs_are_graded_and_listed_with_the_sdk",
}


@dataclass(frozen=True)
class Example:
    key: str
    line: int
    source: str


def examples() -> dict[str, Example]:
    """Every ```python block of README.md and docs/*.md, by key."""
    found: dict[str, Example] = {}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for number, match in enumerate(FENCE.finditer(text), start=1):
            key = f"{path.relative_to(ROOT).as_posix()}#{number}"
            found[key] = Example(key, text.count("\n", 0, match.start()) + 2, match.group(1))
    return found


async def run_example(
    key: str, replace: dict[str, str] | None = None, given: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run example `key` with its placeholders replaced; the names it defined, to check what it did."""
    example = examples()[key]
    source = example.source
    for placeholder, value in (replace or {}).items():
        assert placeholder in source, f"{key} no longer has {placeholder!r}: update its test"
        source = source.replace(placeholder, value)
    namespace: dict[str, Any] = {"__name__": "__example__", **(given or {})}
    code = compile(source, f"{key} (line {example.line})", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)  # the project's own documentation, run on purpose
    if inspect.iscoroutine(result):
        await result
    return namespace
