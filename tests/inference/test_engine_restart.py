"""A killed engine: 503 with Retry-After (never 500) while it is down, then it is back and answers.

The `finetune chat` command is checked here too, on the base model, while the engine is up, and so is
a client that leaves in the middle of a stream: the engine must stop generating for it.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest
from openai import OpenAI
from typer.testing import CliRunner

from app.cli.main import app as cli


@pytest.mark.slow
@pytest.mark.timeout(900)  # two engine starts, each up to minutes on a loaded machine
async def test_killed_engine_answers_503_then_comes_back(serving, tiny_model, make_user) -> None:  # type: ignore[no-untyped-def]
    serving.wait_engine()
    user = await make_user("ops@acme.example")
    client = OpenAI(base_url=f"{serving.user_api}/v1", api_key=user.key, max_retries=0)
    request = {"model": tiny_model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}
    assert client.chat.completions.create(**request).choices[0].message.content  # type: ignore[arg-type]
    assert_cli_chats(serving.user_api, user.key, tiny_model)
    # Sampling options reach the engine: two seeded choices, each with its token log-probabilities.
    sampled = client.chat.completions.create(**request, n=2, seed=5, temperature=1.5, logprobs=True, top_logprobs=2)  # type: ignore[arg-type]
    assert [choice.index for choice in sampled.choices] == [0, 1] and 2 <= sampled.usage.completion_tokens <= 8
    assert all(len(choice.logprobs.content[0].top_logprobs) == 2 for choice in sampled.choices)
    assert_a_stream_left_is_aborted(serving.user_api, serving.engine_url, user.headers, tiny_model)

    serving.engine.kill()  # SIGKILL, as a crash would
    down = httpx.post(f"{serving.user_api}/v1/chat/completions", json=request, headers=user.headers, timeout=30)
    assert down.status_code == 503, down.text
    assert int(down.headers["retry-after"]) > 0 and down.json()["error"]["code"] == "engine_unavailable"
    ready = httpx.get(f"{serving.user_api}/ready", timeout=30)
    assert ready.status_code == 503 and "inference:tiny-llama" in ready.json()["down"]

    serving.wait_engine()  # the supervisor started it again, as make run and compose do
    assert client.chat.completions.create(**request).choices[0].message.content  # type: ignore[arg-type]
    assert httpx.get(f"{serving.user_api}/ready", timeout=30).status_code == 200


def assert_cli_chats(user_api: str, key: str, model: str) -> None:
    runner = CliRunner(env={"FINETUNE_BASE_URL": user_api, "FINETUNE_API_KEY": key, "FINETUNE_CONFIG": "/nonexistent"})
    once = runner.invoke(cli, ["chat", model, "--prompt", "hello", "--max-tokens", "4", "--temperature", "0"])
    assert once.exit_code == 0 and once.stdout.strip(), once.output
    # Interactive: each line a turn of one conversation, the answer streamed after it; /exit ends.
    talk = runner.invoke(cli, ["chat", model, "--max-tokens", "4", "--temperature", "0"], input="hello\nagain\n/exit\n")
    assert talk.exit_code == 0 and len(talk.stdout.strip().splitlines()) == 2, talk.output
    assert talk.stdout.splitlines()[0] == once.stdout.splitlines()[0]  # same first question, same greedy answer
    missing = runner.invoke(cli, ["chat", "no-such-model", "--prompt", "hi"])
    assert missing.exit_code != 0 and "No such model" in missing.output


FINISHED = re.compile(r'^vllm:request_success_total\{[^}]*finished_reason="(\w+)"[^}]*\} ([0-9.e+]+)$', re.MULTILINE)
RUNNING = re.compile(r"^vllm:num_requests_running\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)


def engine_counts(engine_url: str) -> tuple[float, dict[str, float]]:
    """The engine's requests running now, and its count of requests that ended by finishing (stop, length,
    ...): vLLM does not count an aborted request there."""
    metrics = httpx.get(f"{engine_url}/metrics", timeout=30).text
    finished: dict[str, float] = {}
    for reason, value in FINISHED.findall(metrics):
        finished[reason] = finished.get(reason, 0.0) + float(value)
    return sum(float(value) for value in RUNNING.findall(metrics)), finished


def assert_a_stream_left_is_aborted(user_api: str, engine_url: str, headers: dict[str, str], model: str) -> None:
    """A client that closes its stream after the first chunk: the engine aborts the request instead of
    generating the 1500 tokens asked for to nobody (the API closes its own connection to the engine)."""
    _, before = engine_counts(engine_url)
    body = {"model": model, "messages": [{"role": "user", "content": "Tell me a long story."}], "stream": True,
            "max_tokens": 1500, "temperature": 0}  # fmt: skip
    with httpx.stream("POST", f"{user_api}/v1/chat/completions", json=body, headers=headers, timeout=60) as response:
        assert response.status_code == 200
        first = next(line for line in response.iter_lines() if line.startswith("data: {"))
    assert '"chat.completion.chunk"' in first
    deadline = time.monotonic() + 120
    while (running := engine_counts(engine_url)[0]) > 0:
        assert time.monotonic() < deadline, f"{running} requests still generating 120 s after their client left"
        time.sleep(0.2)
    time.sleep(1)  # a request that ended by finishing would be counted in the same metrics update
    assert engine_counts(engine_url)[1] == before  # ended, and not by finishing: aborted
