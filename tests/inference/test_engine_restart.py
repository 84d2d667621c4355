"""A killed engine: 503 with Retry-After (never 500) while it is down, then it is back and answers.

The `finetune chat` command is checked here too, on the base model, while the engine is up.
"""

from __future__ import annotations

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
