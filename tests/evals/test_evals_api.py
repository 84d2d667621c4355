"""OpenAI's Evals API with the official SDK: evals, jsonl runs graded by a real worker, refusals, tenants."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.wire.openai_wire import violations

QUESTION_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
}
CRITERIA = [
    {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}", "reference": "{{item.answer}}",
     "operation": "eq"},
    {"type": "text_similarity", "name": "close", "input": "{{ sample.output_text }}", "reference": "{{item.answer}}",
     "evaluation_metric": "fuzzy_match", "pass_threshold": 0.7},
]  # fmt: skip
ROWS = [
    ("What colour is the sky?", "blue", "blue"),
    ("How many legs has a cat?", "four", "four"),
    ("Capital of France?", "Paris", "Paris"),
    ("Opposite of hot?", "cold", "warm"),
    ("First letter?", "A", "Zebra"),
]


def assert_openai_shape(user_api: str, key: str, path: str, schema: str) -> dict[str, Any]:
    """The raw answer at `path`, checked against OpenAI's own schema of it (tests/wire)."""
    body = httpx.get(f"{user_api}/v1{path}", headers={"Authorization": f"Bearer {key}"}, timeout=30).json()
    assert violations(schema, body) == [], body
    return body  # type: ignore[no-any-return]


def wait_run(client: OpenAI, eval_id: str, run_id: str, timeout: float = 240) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.evals.runs.retrieve(run_id, eval_id=eval_id)
        if run.status in ("completed", "failed", "canceled"):
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} still {run.status} after {timeout}s")


@pytest.mark.timeout(600)
async def test_jsonl_runs_are_graded_and_listed_with_the_sdk(serving, evals_worker, make_user) -> None:  # type: ignore[no-untyped-def]
    alice = await make_user("alice@acme.example", "acme")
    bob = await make_user("bob@acme.example", "acme")
    carol = await make_user("carol@rival.example", "rival")
    client, colleague, rival = (OpenAI(base_url=f"{serving.user_api}/v1", api_key=user.key, max_retries=0)
                                for user in (alice, bob, carol))  # fmt: skip

    created = client.evals.create(
        name="capitals",
        data_source_config={"type": "custom", "item_schema": QUESTION_SCHEMA, "include_sample_schema": True},
        testing_criteria=CRITERIA,  # type: ignore[arg-type]
        metadata={"team": "geo"},
    )
    assert created.object == "eval" and created.id.startswith("eval_") and created.metadata == {"team": "geo"}
    assert created.data_source_config.schema_["properties"]["item"] == QUESTION_SCHEMA  # type: ignore[union-attr]
    assert [criterion.name for criterion in created.testing_criteria] == ["exact", "close"]
    assert client.evals.retrieve(created.id).name == "capitals"
    assert_openai_shape(serving.user_api, alice.key, f"/evals/{created.id}", "Eval")
    assert client.evals.update(created.id, name="capital facts").name == "capital facts"
    assert [listed.id for listed in client.evals.list()] == [created.id]
    assert [listed.id for listed in colleague.evals.list()] == [created.id]  # the organization's evals
    assert list(rival.evals.list()) == []
    with pytest.raises(openai.NotFoundError):
        rival.evals.retrieve(created.id)

    content = [{"item": {"question": q, "answer": a}, "sample": {"output_text": said}} for q, a, said in ROWS]
    run = client.evals.runs.create(
        created.id, name="given answers", data_source={"type": "jsonl", "source": {"type": "file_content",
                                                                                   "content": content}}  # type: ignore[arg-type]
    )  # fmt: skip
    assert run.object == "eval.run" and run.status == "queued" and run.eval_id == created.id
    done = wait_run(client, created.id, run.id)
    assert done.status == "completed", done.error  # type: ignore[attr-defined]
    assert done.result_counts.model_dump() == {"total": 5, "errored": 0, "failed": 2, "passed": 3}  # type: ignore[attr-defined]
    per_criteria = {result.testing_criteria.split("-")[0]: (result.passed, result.failed)
                    for result in done.per_testing_criteria_results}  # type: ignore[attr-defined]  # fmt: skip
    assert per_criteria == {"exact": (3, 2), "close": (3, 2)}

    # Every item is kept with its grades, in pages, and filtered by outcome.
    first = client.evals.runs.output_items.list(run.id, eval_id=created.id, limit=2)
    assert len(first.data) == 2 and first.has_more
    items = list(client.evals.runs.output_items.list(run.id, eval_id=created.id))
    assert sorted(item.datasource_item_id for item in items) == [0, 1, 2, 3, 4]
    failed = list(client.evals.runs.output_items.list(run.id, eval_id=created.id, status="fail"))
    assert sorted(item.datasource_item["answer"] for item in failed) == ["A", "cold"]
    warm = next(item for item in items if item.datasource_item["answer"] == "cold")
    grades = {result.name: (result.passed, round(result.score, 2)) for result in warm.results}
    assert grades["exact"] == (False, 0.0) and grades["close"][0] is False
    assert warm.sample.output[0].content == "warm"
    one = client.evals.runs.output_items.retrieve(warm.id, eval_id=created.id, run_id=run.id)
    assert one.id == warm.id and one.status == "fail"
    assert [listed.id for listed in client.evals.runs.list(created.id, status="completed")] == [run.id]
    assert_openai_shape(serving.user_api, alice.key, "/evals", "EvalList")

    # A colleague reads and runs the eval, but may not delete it or cancel alice's run; another tenant sees none.
    assert colleague.evals.runs.retrieve(run.id, eval_id=created.id).id == run.id
    with pytest.raises(openai.PermissionDeniedError):
        colleague.evals.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        rival.evals.runs.retrieve(run.id, eval_id=created.id)
    with pytest.raises(openai.ConflictError) as finished:
        client.evals.runs.cancel(run.id, eval_id=created.id)
    assert "completed" in finished.value.message

    assert_bad_input_is_refused(client, created.id)
    await assert_docs_example_runs(serving.user_api, alice.key)

    assert client.evals.runs.delete(run.id, eval_id=created.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.evals.runs.retrieve(run.id, eval_id=created.id)
    assert client.evals.delete(created.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.evals.retrieve(created.id)


def assert_bad_input_is_refused(client: OpenAI, eval_id: str) -> None:
    """Each refusal is a 400 naming the field at fault, and creates nothing."""
    config = {"type": "custom", "item_schema": QUESTION_SCHEMA}
    python = {"type": "python", "name": "code", "source": "def grade(sample, item):\n    return 1.0"}
    refusals = [
        ({"testing_criteria": [python]}, "testing_criteria[0]", "unsupported_grader"),
        ({"testing_criteria": [{**CRITERIA[0], "operation": "startswith"}]}, "testing_criteria[0].operation", None),
        ({"testing_criteria": [{k: v for k, v in CRITERIA[1].items() if k != "pass_threshold"}]},
         "testing_criteria[0].pass_threshold", None),
        ({"testing_criteria": [{**CRITERIA[0], "input": "{{answer.text}}"}]}, "testing_criteria[0].input", None),
    ]  # fmt: skip
    before = [listed.id for listed in client.evals.list()]
    for body, param, code in refusals:
        with pytest.raises(openai.BadRequestError) as refused:
            client.evals.create(data_source_config=config, **body)  # type: ignore[arg-type]
        assert refused.value.param is not None and refused.value.param.startswith(param), (param, refused.value.body)
        if code:
            assert refused.value.code == code
    assert [listed.id for listed in client.evals.list()] == before

    bad_row = [{"item": {"question": "Q", "answer": 7}, "sample": {"output_text": "7"}}]
    with pytest.raises(openai.BadRequestError) as mismatched:
        client.evals.runs.create(eval_id, data_source={"type": "jsonl", "source": {"type": "file_content",
                                                                                   "content": bad_row}})  # type: ignore[arg-type]  # fmt: skip
    assert mismatched.value.param == "data_source.source.content[0].item.answer"
    with pytest.raises(openai.BadRequestError) as unsampled:
        client.evals.runs.create(eval_id, data_source={"type": "jsonl", "source": {"type": "file_content",
                                 "content": [{"item": {"question": "Q", "answer": "A"}}]}})  # type: ignore[arg-type]  # fmt: skip
    assert "sample" in unsampled.value.message
    with pytest.raises(openai.NotFoundError) as unknown_model:
        client.evals.runs.create(eval_id, data_source={"type": "completions", "model": "ft:nobody:x:y:z",
            "input_messages": {"type": "item_reference", "item_reference": "item.messages"},
            "source": {"type": "file_content", "content": [{"item": {"question": "Q", "answer": "A"}}]}})  # type: ignore[arg-type]  # fmt: skip
    assert unknown_model.value.code == "model_not_found"


async def assert_docs_example_runs(user_api: str, key: str) -> None:
    """docs/evals.md's example, as written (tests/docs/examples.py)."""
    from tests.docs.examples import run_example

    names = await run_example("docs/evals.md#1", {"http://127.0.0.1:8080/v1": f"{user_api}/v1",
                                                 '"sk-ft-..."': f'"{key}"'})  # fmt: skip
    assert names["run"].status == "completed"
    assert names["run"].result_counts.model_dump() == {"total": 2, "errored": 0, "failed": 1, "passed": 1}
    assert names["item"].datasource_item["answer"] == "Lima"
