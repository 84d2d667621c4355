"""Fine-tuned models answer through /v1/chat/completions on vLLM, with the official SDK unchanged.

One scenario, because its start (two real fine-tuning jobs and a vLLM engine) is what costs:
train two models on made-up facts, then call them as OpenAI's users do.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletion

from tests.inference.facts import ANSWERS, MEMORISE, QUESTIONS, facts_file, messages

TERMINAL = {"succeeded", "failed", "cancelled"}
GREEDY = {"temperature": 0, "max_tokens": 20}


def start_job(client: OpenAI, model: str, facts: str) -> str:
    training = client.files.create(file=(f"{facts}.jsonl", facts_file(facts)), purpose="fine-tune")
    method = {"type": "supervised", "supervised": {"hyperparameters": MEMORISE}}
    return client.fine_tuning.jobs.create(model=model, training_file=training.id, suffix=facts, method=method).id


def wait_jobs(client: OpenAI, job_ids: list[str], timeout: float = 900) -> list[object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = [client.fine_tuning.jobs.retrieve(job_id) for job_id in job_ids]
        if all(job.status in TERMINAL for job in jobs):
            return jobs
        time.sleep(2)
    raise AssertionError(f"jobs not finished after {timeout}s: {[job.status for job in jobs]}")


def answer(client: OpenAI, model: str, question: str, **options: object) -> ChatCompletion:
    return client.chat.completions.create(model=model, messages=messages(question), **(GREEDY | options))  # type: ignore[call-overload,no-any-return]


@pytest.mark.slow
@pytest.mark.timeout(1500)  # 7 min here with other suites running; two trainings and the engine's start
async def test_fine_tuned_models_answer_their_facts_through_the_sdk(  # type: ignore[no-untyped-def]
    serving, cpu_worker, gpu_worker, second_gpu_worker, tiny_model, make_user, sessionmaker, settings
) -> None:
    # Two GPU workers train the two models at once, as a fleet would: on 2 cores two tiny trainings together
    # take about as long as one alone (each is bound by Python's per-step work, not by the cores).
    alice = await make_user("alice@acme.example", "acme")
    carol = await make_user("carol@rival.example", "rival")
    admin = await make_user("root@ops.example", "ops", roles=["admin"])
    client = OpenAI(base_url=f"{serving.user_api}/v1", api_key=alice.key, max_retries=0)
    rival = OpenAI(base_url=f"{serving.user_api}/v1", api_key=carol.key, max_retries=0)

    job_ids = [start_job(client, tiny_model, facts) for facts in ("red", "blue")]
    # Before the job succeeds its model name answers plainly, not with a bare 404.
    pending = f"ft:{tiny_model}:acme:red:{job_ids[0][-8:]}"
    with pytest.raises(openai.NotFoundError) as not_ready:
        answer(client, pending, QUESTIONS[0])
    assert not_ready.value.code == "model_not_ready" and job_ids[0] in not_ready.value.message

    red_job, blue_job = wait_jobs(client, job_ids)
    serving.wait_engine()
    assert red_job.status == blue_job.status == "succeeded", (red_job.error, blue_job.error)
    red, blue = red_job.fine_tuned_model, blue_job.fine_tuned_model
    assert red == pending

    # The fine-tuned model knows its facts; the base model does not.
    for question, expected in zip(QUESTIONS, ANSWERS["red"], strict=True):
        completion = answer(client, red, question)
        assert completion.choices[0].message.content == expected
        assert completion.model == red and completion.object == "chat.completion"
        assert completion.choices[0].finish_reason == "stop" and completion.system_fingerprint
        assert completion.model_extra == {} and completion.choices[0].message.model_extra == {}  # OpenAI's fields only
    base_answers = {answer(client, tiny_model, question).choices[0].message.content for question in QUESTIONS}
    assert not base_answers & set(ANSWERS["red"] + ANSWERS["blue"])

    assert_streamed_equals_plain(client, serving.user_api, alice.key, red)
    await assert_concurrent_adapters_answer_their_own_facts(serving.user_api, alice.key, red, blue)
    await assert_served_equals_transformers(client, sessionmaker, red)
    assert_other_tenants_and_bad_parameters_are_refused(client, rival, red)
    assert_least_recently_used_adapter_makes_room(client, serving, red_job, blue)
    assert_admin_views(serving, admin.headers, alice.organization_id, red)
    assert_rate_limit(serving, admin.headers, carol, tiny_model)

    listed = {model.id: model for model in client.models.list()}
    assert listed[red].served and listed[tiny_model].served  # type: ignore[attr-defined]
    # A deleted model leaves the engine at once and answers that it was deleted.
    client.models.delete(blue)
    assert blue not in serving.loaded_adapters()
    with pytest.raises(openai.NotFoundError) as deleted:
        answer(client, blue, QUESTIONS[0])
    assert "was deleted" in deleted.value.message
    # Last: the in-process example below holds adapters of its own on the engine.
    await assert_serving_docs_examples_run(serving, alice, red_job, sessionmaker, settings)


def assert_streamed_equals_plain(client: OpenAI, user_api: str, key: str, model: str) -> None:
    plain = answer(client, model, QUESTIONS[1])
    stream = client.chat.completions.create(
        model=model, messages=messages(QUESTIONS[1]), stream=True, stream_options={"include_usage": True}, **GREEDY
    )
    chunks = list(stream)
    assert all(chunk.object == "chat.completion.chunk" and chunk.model_extra == {} for chunk in chunks)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == plain.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    # On the wire: SSE `data:` lines, the last one `data: [DONE]`.
    body = {"model": model, "messages": messages(QUESTIONS[1]), "stream": True, **GREEDY}
    raw = httpx.post(f"{user_api}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
    assert raw.headers["content-type"].startswith("text/event-stream")
    events = [line for line in raw.text.split("\n\n") if line]
    assert all(event.startswith("data: ") for event in events) and events[-1] == "data: [DONE]"
    assert '"usage"' not in raw.text  # not asked for


async def assert_concurrent_adapters_answer_their_own_facts(user_api: str, key: str, red: str, blue: str) -> None:
    client = AsyncOpenAI(base_url=f"{user_api}/v1", api_key=key, max_retries=0)
    asked = [(model, index) for index in range(len(QUESTIONS)) for model in (red, blue)]
    requests = [client.chat.completions.create(model=model, messages=messages(QUESTIONS[index]), **GREEDY)
                for model, index in asked]  # fmt: skip
    answers = await asyncio.gather(*requests)
    for (model, index), completion in zip(asked, answers, strict=True):
        facts = "red" if model == red else "blue"
        assert completion.choices[0].message.content == ANSWERS[facts][index], (model, index)
    await client.close()


async def assert_served_equals_transformers(client: OpenAI, sessionmaker, model: str) -> None:  # type: ignore[no-untyped-def]
    """The served LoRA (adapter + saved chat template) answers as transformers' greedy decoding of the merged model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from app.finetuned.tables import FineTunedModel

    async with sessionmaker() as session:
        merged_path = (await session.get(FineTunedModel, model)).merged_path
    tokenizer = AutoTokenizer.from_pretrained(merged_path)
    merged = AutoModelForCausalLM.from_pretrained(merged_path)
    for question in (QUESTIONS[2], "Tell me a story about the green river."):  # a learnt one and an unseen one
        prompt = tokenizer.apply_chat_template(messages(question), add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)  # fmt: skip
        output = merged.generate(**prompt, max_new_tokens=16, do_sample=False)
        expected = tokenizer.decode(output[0][prompt["input_ids"].shape[1] :], skip_special_tokens=True)
        served = answer(client, model, question, max_tokens=16).choices[0].message.content
        assert served == expected, question


def assert_other_tenants_and_bad_parameters_are_refused(client: OpenAI, rival: OpenAI, model: str) -> None:
    with pytest.raises(openai.NotFoundError) as foreign:
        answer(rival, model, QUESTIONS[0])
    with pytest.raises(openai.NotFoundError) as missing:
        answer(rival, model + "x", QUESTIONS[0])
    assert foreign.value.code == missing.value.code == "model_not_found"
    bad = [
        ({"temperature": 2.5}, "temperature"),
        ({"n": 100}, "n"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"extra_body": {"best_of": 2}}, "best_of"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
         "messages[0].content[0].type"),
    ]  # fmt: skip
    for options, param in bad:
        call = {"model": model, "messages": messages(QUESTIONS[0])} | options
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(**call)  # type: ignore[call-overload]
        assert refused.value.param == param, (options, refused.value.body)


def assert_least_recently_used_adapter_makes_room(client: OpenAI, serving, red_job, blue: str) -> None:  # type: ignore[no-untyped-def]
    """Two adapter slots: a checkpoint of red, asked after blue, unloads red (the least recently used)."""
    answer(client, blue, QUESTIONS[0])
    assert set(serving.loaded_adapters()) == {red_job.fine_tuned_model, blue}
    checkpoint = client.fine_tuning.jobs.checkpoints.list(red_job.id).data[0].fine_tuned_model_checkpoint
    assert checkpoint.startswith(red_job.fine_tuned_model + ":ckpt-step-")
    assert answer(client, checkpoint, QUESTIONS[4]).choices[0].message.content == ANSWERS["red"][4]
    assert set(serving.loaded_adapters()) == {blue, checkpoint}


def assert_admin_views(serving, headers: dict[str, str], organization_id: str, model: str) -> None:  # type: ignore[no-untyped-def]
    admin = f"{serving.admin_api}/admin/v1"
    query = {"organization_id": organization_id, "model": model}
    deadline = time.monotonic() + 10  # counts are written within a second of the answer
    while True:
        usage = httpx.get(f"{admin}/serving/usage", params=query, headers=headers).json()["data"]
        if (usage and usage[0]["requests"] >= 15) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(usage) == 1 and usage[0]["requests"] >= 15 and usage[0]["completion_tokens"] > 0, usage
    engines = httpx.get(f"{admin}/serving/engines", headers=headers).json()["data"]
    assert engines[0]["status"] == "up" and engines[0]["lora_adapters"]["max_loaded"] == 2
    metrics = httpx.get(f"{admin}/serving/metrics", params={"model": "tiny-llama"}, headers=headers)
    assert metrics.status_code == 200 and "vllm:" in metrics.text
    catalog = httpx.get(f"{admin}/base-models/tiny-llama", headers=headers).json()
    assert catalog["serving"]["served"] is True and catalog["serving"]["engine"] == "vllm"


def assert_rate_limit(serving, headers: dict[str, str], user, model: str) -> None:  # type: ignore[no-untyped-def]
    limit = httpx.put(f"{serving.admin_api}/admin/v1/serving/rate-limits/{user.organization_id}",
                      json={"requests_per_minute": 2}, headers=headers)  # fmt: skip
    assert limit.status_code == 200, limit.text
    client = OpenAI(base_url=f"{serving.user_api}/v1", api_key=user.key, max_retries=0)
    # Earlier requests of this minute count too, and a new minute may start once: send until refused.
    with pytest.raises(openai.RateLimitError) as limited:
        for _ in range(5):
            answer(client, model, QUESTIONS[0], max_tokens=2)
    assert int(limited.value.response.headers["retry-after"]) >= 1
    assert limited.value.response.headers["x-should-retry"] == "true"  # the SDK waits and retries


async def assert_serving_docs_examples_run(serving, user, job, sessionmaker, settings) -> None:  # type: ignore[no-untyped-def]
    """docs/serving.md's two examples, as written (tests/docs/examples.py): the SDK's, then the gateway's."""
    from app.authz.principal import Principal
    from app.authz.service import Authorizer
    from tests.docs.examples import run_example

    placeholders = {"http://127.0.0.1:8080/v1": f"{serving.user_api}/v1", '"sk-ft-..."': f'"{user.key}"',
                    '"ftjob-..."': f'"{job.id}"'}  # fmt: skip
    sdk = await run_example("docs/serving.md#1", placeholders)
    assert sdk["answer"].model == job.fine_tuned_model and sdk["answer"].choices[0].message.content
    served = settings.model_copy(update={"inference_engines": {"tiny-llama": serving.engine_url}})
    async with sessionmaker() as session:
        given = {"settings": served, "session": session, "authorizer": Authorizer(served.cerbos_url),
                 "principal": Principal(id=user.id, roles=user.roles, organization_id=user.organization_id),
                 "prompts": [messages(question) for question in QUESTIONS[:3]]}  # fmt: skip
        names = await run_example("docs/serving.md#2", {'"ft:..."': f'"{job.fine_tuned_model}"'}, given)
    try:
        assert [answer["choices"][0]["message"]["content"] for answer in names["answers"]] == ANSWERS["red"][:3]
        assert names["completion"]["choices"][0]["message"]["content"] == ANSWERS["red"][0]
        chunks = [chunk async for batch in names["stream"] for chunk in batch]
        assert (
            "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == ANSWERS["red"][0]
        )
    finally:
        await names["gateway"].close()
