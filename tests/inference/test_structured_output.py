"""`response_format` reaches the engine: its answers keep to the JSON or the JSON Schema asked for.

The tiny model knows no JSON of its own (its weights are random): whatever JSON it answers is the engine's
structured decoding at work, which is what this proves. Before the engine was told to leave no free whitespace
(`--structured-outputs-config`, app/devstack/inference.py), this model filled `max_tokens` with blanks after `{`.
"""

from __future__ import annotations

import json

import pytest
from openai import OpenAI

VERDICT = {
    "type": "object",
    "properties": {"verdict": {"type": "string", "enum": ["yes", "no"]}, "sure": {"type": "boolean"}},
    "required": ["verdict", "sure"],
    "additionalProperties": False,
}


@pytest.mark.slow
async def test_answers_keep_to_the_requested_json(serving, tiny_model, make_user) -> None:  # type: ignore[no-untyped-def]
    serving.wait_engine()
    user = await make_user("json@acme.example")
    client = OpenAI(base_url=f"{serving.user_api}/v1", api_key=user.key, max_retries=0)
    ask = {"model": tiny_model, "messages": [{"role": "user", "content": "Is the sky blue? Answer in JSON."}]}

    unconstrained = client.chat.completions.create(**ask, max_tokens=24, seed=1)  # type: ignore[call-overload]
    with pytest.raises(ValueError):  # without a format, the random model's words are no JSON
        json.loads(unconstrained.choices[0].message.content or "")

    schema = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": VERDICT, "strict": True}}
    for seed in (1, 2, 3):
        answer = client.chat.completions.create(**ask, max_tokens=40, seed=seed, response_format=schema)  # type: ignore[call-overload]
        choice = answer.choices[0]
        assert choice.finish_reason == "stop", choice
        parsed = json.loads(choice.message.content or "")
        assert set(parsed) == {"verdict", "sure"} and parsed["verdict"] in ("yes", "no"), parsed
        assert isinstance(parsed["sure"], bool), parsed
        # Compact (the engine's disable_any_whitespace): a model never taught JSON cannot pad it with blanks.
        assert choice.message.content == json.dumps(parsed, separators=(",", ":")), choice.message.content

    # json_object: any JSON object. Cut short by max_tokens it is still the start of one.
    answer = client.chat.completions.create(**ask, max_tokens=60, seed=4, response_format={"type": "json_object"})  # type: ignore[call-overload]
    choice = answer.choices[0]
    text = (choice.message.content or "").lstrip()
    assert text.startswith("{"), text
    if choice.finish_reason == "stop":
        assert isinstance(json.loads(text), dict), text

    # Streamed, the chunks join into the same kind of answer.
    chunks = client.chat.completions.create(**ask, max_tokens=40, seed=5, response_format=schema, stream=True)  # type: ignore[call-overload]
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert json.loads(streamed)["verdict"] in ("yes", "no"), streamed
