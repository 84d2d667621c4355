"""A fine-tune that memorised facts against its base: the automatic comparison on the job's validation file,
an eval with string_check, text_similarity and score_model criteria through the SDK, and a run whose
worker is killed mid-way that still grades every item exactly once.

Two fine-tunes of the tiny model serve all three (the training is what costs): one learnt six facts; the
other, the judge, learnt to answer "1" for the six facts' answers and "0" for the other set's answers to the
same questions, each shown against its reference. (One model taught both memorised the facts unreliably: the
judge's prompts hold the facts. Taught to tell a fact's answer from another fact's answer, which needs the two
strings compared, the 2-layer model got 4-5 of its own 6 training negatives right, and at lr 1e-2 it answered
"1" to everything: a grader that cannot fail. Measured in session 28, notes/STATUS.md.)
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import psutil
import pytest
from openai import OpenAI
from sqlalchemy import func, select

from tests.evals.test_evals_api import assert_openai_shape, wait_run
from tests.inference.facts import ANSWERS, MEMORISE, QUESTIONS, SYSTEM, facts_file, messages

FACTS = list(zip(QUESTIONS, ANSWERS["red"], strict=True))
WRONG = ANSWERS["blue"]  # the same questions answered otherwise
JUDGE_SYSTEM = "Grade the answer against the reference: 1 if they match, else 0."
JUDGE_PROMPT = "Reference: {reference}\nAnswer: {answer}"
# The judge's lines run to about 90 tokens: a 64-token cut would drop the replies it must learn. At the
# facts' lr 1e-2 it collapsed to answering "1" always.
JUDGE_HYPERPARAMETERS = MEMORISE | {"max_seq_length": 128, "learning_rate": 0.003}
# Trained in process with those, seeds 1 to 10 all learnt the 12 lines, the right reply ahead of the other by
# 0.91 to 1.33 logits, seed 1 by 0.92 at least (`python -m tests.evals.judge_seeds 1 2 3`, docs/evidence.md).
JUDGE_SEED = 1
ITEM_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "reference": {"type": "string"}},
    "required": ["question", "reference"],
}


def judge_messages(reference: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": JUDGE_PROMPT.format(reference=reference, answer=answer)}]  # fmt: skip


def judge_file(repeats: int = 2) -> bytes:
    """A judge's training file: "1" for the fact's own answer, "0" for the other set's answer to its question."""
    lines = []
    for (_, answer), wrong in zip(FACTS, WRONG, strict=True):
        lines.append({"messages": [*judge_messages(answer, answer), {"role": "assistant", "content": "1"}]})
        lines.append({"messages": [*judge_messages(answer, wrong), {"role": "assistant", "content": "0"}]})
    return "".join(json.dumps(line) + "\n" for line in lines * repeats).encode()


def ask_judge(client: OpenAI, judge: str, reference: str, answer: str) -> str | None:
    messages = judge_messages(reference, answer)
    reply = client.chat.completions.create(model=judge, messages=messages, temperature=0, max_completion_tokens=4)  # type: ignore[arg-type]
    return reply.choices[0].message.content


def validation_file() -> bytes:
    lines = [
        {"messages": [*messages(question), {"role": "assistant", "content": answer}]} for question, answer in FACTS
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


CRITERIA = [
    {"type": "string_check", "name": "says the fact", "input": "{{sample.output_text}}",
     "reference": "{{item.reference}}", "operation": "ilike"},
    {"type": "text_similarity", "name": "close to the fact", "input": "{{sample.output_text}}",
     "reference": "{{item.reference}}", "evaluation_metric": "rouge_l", "pass_threshold": 0.8},
]  # fmt: skip


def judge_criterion(judge: str) -> dict[str, Any]:
    prompt = JUDGE_PROMPT.format(reference="{{item.reference}}", answer="{{sample.output_text}}")
    return {"type": "score_model", "name": "judged correct", "model": judge, "range": [0, 1], "pass_threshold": 0.5,
            "input": [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": prompt}],
            "sampling_params": {"temperature": 0, "max_completions_tokens": 4}}  # fmt: skip


def completions(model: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "completions",
        "model": model,
        "input_messages": {"type": "template", "template": [
            {"role": "system", "content": SYSTEM}, {"role": "user", "content": "{{item.question}}"}]},
        "sampling_params": {"temperature": 0, "max_completion_tokens": 24},
        "source": {"type": "file_content", "content": rows},
    }  # fmt: skip


def wait_comparison(client: OpenAI, job_id: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        comparison = (job.model_extra or {}).get("comparison")
        if comparison and comparison["status"] not in ("running",):
            return comparison  # type: ignore[no-any-return]
        time.sleep(1)
    raise AssertionError(f"no comparison on {job_id} after {timeout}s: {comparison}")


def kill_tree(worker) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL the worker's prefork children and the worker itself, as a lost machine would (and reap it)."""
    for child in psutil.Process(worker.pid).children(recursive=True):
        child.kill()
    worker.kill()


@pytest.mark.slow
@pytest.mark.timeout(1500)
async def test_fine_tune_beats_its_base_and_runs_survive_a_killed_worker(  # type: ignore[no-untyped-def]
    serving, evals_worker, gpu_worker, second_gpu_worker, tiny_model, make_user, sessionmaker, mlflow
) -> None:
    # The fine-tune and the judge train at once on two GPU workers (together about as long as one alone here).
    alice = await make_user("alice@acme.example", "acme")
    client = OpenAI(base_url=f"{serving.user_api}/v1", api_key=alice.key, max_retries=0)
    training = client.files.create(file=("facts.jsonl", facts_file("red")), purpose="fine-tune")
    validation = client.files.create(file=("facts-valid.jsonl", validation_file()), purpose="fine-tune")
    judging = client.files.create(file=("judge.jsonl", judge_file()), purpose="fine-tune")
    facts_method = {"type": "supervised", "supervised": {"hyperparameters": MEMORISE}}
    judge_method = {"type": "supervised", "supervised": {"hyperparameters": JUDGE_HYPERPARAMETERS}}
    job = client.fine_tuning.jobs.create(model=tiny_model, training_file=training.id, validation_file=validation.id,
                                         suffix="facts", method=facts_method)  # type: ignore[arg-type]  # fmt: skip
    # The judge is this test's instrument, not its subject: its seed is fixed so that every run grades with the
    # same judge (the facts' fine-tune, the subject, draws its seed as a user's job does).
    judge_job = client.fine_tuning.jobs.create(model=tiny_model, training_file=judging.id, suffix="judge",
                                               method=judge_method, seed=JUDGE_SEED)  # type: ignore[arg-type]  # fmt: skip
    deadline = time.monotonic() + 900
    while (job := client.fine_tuning.jobs.retrieve(job.id)).status not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job.status
        time.sleep(2)
    assert job.status == "succeeded", job.error
    model = job.fine_tuned_model
    assert model
    serving.wait_engine()

    # 1. The automatic comparison on the validation file: on the job, in its events and in its MLflow run.
    comparison = wait_comparison(client, job.id)
    assert comparison["status"] == "completed", comparison
    side_items = {side: [(item.status, item.sample.output[0].content if item.sample.output else item.sample.error)
                         for item in client.evals.runs.output_items.list(comparison[f"{side}_run_id"],
                                                                         eval_id=comparison["eval_id"])]
                  for side in ("fine_tuned", "base")}  # fmt: skip
    assert comparison["fine_tuned"]["passed"] == len(FACTS) > comparison["base"]["passed"], (comparison, side_items)
    assert comparison["passed"] is True and comparison["validation_loss"]["last"] > 0
    said = [event.message for event in client.fine_tuning.jobs.list_events(job.id, limit=100)]
    assert any(message.startswith("Comparison with the base model") for message in said), said
    async with sessionmaker() as session:
        from app.jobs.tables import Job

        mlflow_run_id = (await session.get(Job, job.id)).mlflow_run_id
    logged = mlflow.get_run(mlflow_run_id).data.metrics
    assert logged["comparison.fine_tuned.pass_rate"] == 1.0 and logged["comparison.passed"] == 1.0
    compared = client.evals.retrieve(comparison["eval_id"])
    assert compared.model_extra["fine_tuning_job_id"] == job.id  # type: ignore[index]
    await assert_registry_requires_the_comparison(serving, make_user, sessionmaker, model)

    # 2. With the SDK: string_check, text_similarity and a score_model judged by a fine-tuned judge, on both models.
    while (judge_job := client.fine_tuning.jobs.retrieve(judge_job.id)).status not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, judge_job.status
        time.sleep(2)
    assert judge_job.status == "succeeded", judge_job.error
    judge = judge_job.fine_tuned_model
    assert judge
    # Asked directly, before any eval relies on it: the judge tells a fact's answer from another answer.
    for (_, answer), wrong in zip(FACTS, WRONG, strict=True):
        said = [ask_judge(client, judge, answer, given) for given in (answer, wrong)]
        assert said == ["1", "0"], (answer, wrong, said, f"judge seed {judge_job.seed}")
    rows = [{"item": {"question": question, "reference": answer}} for question, answer in FACTS]
    created = client.evals.create(
        name="facts", data_source_config={"type": "custom", "item_schema": ITEM_SCHEMA, "include_sample_schema": True},
        testing_criteria=[*CRITERIA, judge_criterion(judge)],  # type: ignore[list-item]
    )  # fmt: skip
    runs = {name: client.evals.runs.create(created.id, name=name, data_source=completions(which, rows))  # type: ignore[arg-type]
            for name, which in (("fine-tuned", model), ("base", tiny_model))}  # fmt: skip
    done = {name: wait_run(client, created.id, run.id) for name, run in runs.items()}
    assert all(run.status == "completed" for run in done.values()), {n: r.error for n, r in done.items()}  # type: ignore[attr-defined]
    tuned, base = done["fine-tuned"].result_counts, done["base"].result_counts  # type: ignore[attr-defined]
    shown = "\n".join(
        json.dumps([result.model_dump() for result in item.results])
        for item in client.evals.runs.output_items.list(runs["fine-tuned"].id, eval_id=created.id)
    )
    # The tiny judge is right about most of its own answers, not always: the string graders carry the comparison.
    assert tuned.passed > base.passed and tuned.passed >= len(FACTS) - 2, shown
    assert tuned.total == base.total == len(FACTS) and tuned.errored == base.errored == 0, shown
    for name, run in runs.items():
        items = list(client.evals.runs.output_items.list(run.id, eval_id=created.id))
        assert sorted(item.datasource_item_id for item in items) == list(range(len(FACTS)))
        for item in items:
            assert [result.name for result in item.results] == ["says the fact", "close to the fact", "judged correct"]
            assert item.sample.model == (model if name == "fine-tuned" else tiny_model) and item.sample.output
    tuned_run = runs["fine-tuned"].id
    assert_openai_shape(serving.user_api, alice.key, f"/evals/{created.id}/runs/{tuned_run}", "EvalRun")
    assert_openai_shape(serving.user_api, alice.key, f"/evals/{created.id}/runs", "EvalRunList")
    assert_openai_shape(serving.user_api, alice.key, f"/evals/{created.id}/runs/{tuned_run}/output_items",
                        "EvalRunOutputItemList")  # fmt: skip
    usage = {entry.model_name: entry for entry in done["fine-tuned"].per_model_usage}  # type: ignore[attr-defined]
    assert usage[model].invocation_count == usage[judge].invocation_count == len(FACTS)  # six answers, six grades
    # The judge found the fine-tune's answers correct, and given wrong answers (a jsonl run) it scores them 0.
    judged = [r for item in client.evals.runs.output_items.list(runs["fine-tuned"].id, eval_id=created.id)
              for r in item.results if r.name == "judged correct"]  # fmt: skip
    assert all(result.score in (0.0, 1.0) for result in judged) and sum(r.score for r in judged) >= len(FACTS) - 1
    wrong_rows = [{"item": {"question": question, "reference": answer}, "sample": {"output_text": wrong}}
                  for (question, answer), wrong in zip(FACTS, WRONG, strict=True)]  # fmt: skip
    given = {"type": "jsonl", "source": {"type": "file_content", "content": wrong_rows}}
    wrong_run = wait_run(client, created.id, client.evals.runs.create(created.id, name="wrong answers",
                                                                      data_source=given).id)  # type: ignore[arg-type]  # fmt: skip
    assert wrong_run.status == "completed" and wrong_run.result_counts.passed == 0, wrong_run.error  # type: ignore[attr-defined]
    wrong_judged = [r for item in client.evals.runs.output_items.list(wrong_run.id, eval_id=created.id)
                    for r in item.results if r.name == "judged correct"]  # fmt: skip
    replies = [(r.score, r.sample) for r in wrong_judged], f"judge seed {judge_job.seed}"  # type: ignore[attr-defined]
    assert len(wrong_judged) == len(FACTS) and sum(r.score for r in wrong_judged) <= 1, replies

    # 3. A run whose worker is killed mid-way finishes with each item graded exactly once.
    copies = 8
    many = [{"item": {"question": q, "reference": a}} for q, a in FACTS] * copies
    long_run = client.evals.runs.create(created.id, name="killed", data_source=completions(model, many))  # type: ignore[arg-type]
    from app.evals.tables import EvalOutputItem

    async def stored() -> int:
        async with sessionmaker() as session:
            query = select(func.count()).where(EvalOutputItem.run_id == long_run.id)
            return int(await session.scalar(query) or 0)

    deadline = time.monotonic() + 300
    while (count := await stored()) < 8:
        assert time.monotonic() < deadline, count
        time.sleep(0.2)
    kill_tree(evals_worker)
    assert await stored() < len(many)  # the worker died with work left
    evals_worker.ensure_running()  # a new worker; the reconciler re-publishes the run once its lease lapses
    finished = wait_run(client, created.id, long_run.id, timeout=600)
    assert finished.status == "completed", finished.error  # type: ignore[attr-defined]
    counts = finished.result_counts  # type: ignore[attr-defined]
    assert counts.total == len(many) and counts.errored == 0 and counts.passed >= len(many) - 2 * copies
    async with sessionmaker() as session:
        rows_by = (await session.execute(select(EvalOutputItem.datasource_item_id, EvalOutputItem.attempt,
                                                EvalOutputItem.status)
                                         .where(EvalOutputItem.run_id == long_run.id))).all()  # fmt: skip
    assert sorted(index for index, _, _ in rows_by) == list(range(len(many)))  # each item stored once
    # Greedy answers and a greedy judge: every copy of a question ends alike, whichever attempt graded it.
    ends = {(index % len(FACTS), status) for index, _, status in rows_by}
    assert len(ends) == len(FACTS), sorted(ends)
    attempts = {attempt for _, attempt, _ in rows_by}
    assert min(attempts) == 1 and max(attempts) > 1  # some by the killed worker, the rest by a later attempt


async def assert_registry_requires_the_comparison(serving, make_user, sessionmaker, model: str) -> None:  # type: ignore[no-untyped-def]
    """An alias moves to a version whose comparison passed; a version without one is refused (409)."""
    from app.finetuned.tables import FineTunedModel

    admin = await make_user("root@ops.example", "ops", roles=["admin"])
    async with sessionmaker() as session:
        row = await session.get(FineTunedModel, model)
    url = f"{serving.admin_api}/admin/v1/registry/{row.registry_name}/aliases/champion"
    gated = {"version": row.registry_version, "require_passing_comparison": True}
    moved = httpx.put(url, json=gated, headers=admin.headers, timeout=30)
    assert moved.status_code == 200, moved.text
    assert moved.json()["aliases"]["champion"] == row.registry_version
    unknown = httpx.put(url, json=gated | {"version": row.registry_version + 1}, headers=admin.headers, timeout=30)
    assert unknown.status_code == 409 and unknown.json()["error"]["code"] == "comparison_not_passed", unknown.text
