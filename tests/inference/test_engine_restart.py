"""A killed engine: 503 with Retry-After (never 500) while it is down, then it is back and answers."""

from __future__ import annotations

import httpx
import pytest
from openai import OpenAI


@pytest.mark.slow
async def test_killed_engine_answers_503_then_comes_back(serving, tiny_model, make_user) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("ops@acme.example")
    client = OpenAI(base_url=f"{serving.user_api}/v1", api_key=user.key, max_retries=0)
    request = {"model": tiny_model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}
    assert client.chat.completions.create(**request).choices[0].message.content  # type: ignore[arg-type]

    serving.engine.kill()  # SIGKILL, as a crash would
    down = httpx.post(f"{serving.user_api}/v1/chat/completions", json=request, headers=user.headers, timeout=30)
    assert down.status_code == 503, down.text
    assert int(down.headers["retry-after"]) > 0 and down.json()["error"]["code"] == "engine_unavailable"
    ready = httpx.get(f"{serving.user_api}/ready", timeout=30)
    assert ready.status_code == 503 and "inference:tiny-llama" in ready.json()["down"]

    serving.wait_engine()  # the supervisor started it again, as make run and compose do
    assert client.chat.completions.create(**request).choices[0].message.content  # type: ignore[arg-type]
    assert httpx.get(f"{serving.user_api}/ready", timeout=30).status_code == 200
