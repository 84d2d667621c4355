"""Requests checked against OpenAI's own request types and ranges; answers cut to OpenAI's objects."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from app.core.errors import BadRequest
from app.inference import wire

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"temperature": 2.01}, "temperature"),
        ({"temperature": "1"}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"presence_penalty": -3}, "presence_penalty"),
        ({"frequency_penalty": 2.5}, "frequency_penalty"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 5, "max_completion_tokens": 5}, "max_tokens"),
        ({"n": 0}, "n"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"tools": []}, "tools"),
        ({"store": True}, "store"),
        ({"guided_json": {}}, "guided_json"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}, "messages[0].content[0].text"),
        ({"messages": None}, "messages"),
    ],
)
def test_bad_parameters_name_their_param(change: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as refused:
        wire.checked_request({"model": "m", "messages": MESSAGES} | change, max_choices=8)
    assert refused.value.param == param


def test_every_openai_generation_parameter_is_taken() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "be brief"}]},
            {"role": "user", "content": "hi", "name": "ann"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "again"},
        ],
        "max_completion_tokens": 5, "temperature": 0.5, "top_p": 0.9, "n": 2, "stop": "\n", "seed": 3,
        "presence_penalty": 0.1, "frequency_penalty": 0.2, "logprobs": True, "top_logprobs": 2,
        "response_format": {"type": "json_object"}, "stream": True, "stream_options": {"include_usage": True},
        "user": "u-1", "metadata": {"a": "b"},
    }  # fmt: skip
    checked = wire.checked_request(body, max_choices=8)
    assert "user" not in checked and "model" not in checked and checked["n"] == 2
    assert wire.engine_messages(checked["messages"])[0]["role"] == "system"


def test_engine_answers_are_cut_to_openai_objects() -> None:
    engine = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "internal-name",
        "choices": [{"index": 0, "finish_reason": "stop", "stop_reason": None, "token_ids": None,
                     "message": {"role": "assistant", "content": "hi", "reasoning": None, "tool_calls": []}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4, "prompt_tokens_details": None},
        "prompt_logprobs": None, "kv_transfer_params": None,
    }  # fmt: skip
    shaped = wire.completion_object(engine, "ft:m:org::abc", "fp_1")
    parsed = ChatCompletion.model_validate(shaped)
    assert parsed.model == "ft:m:org::abc" and parsed.system_fingerprint == "fp_1" and parsed.model_extra == {}
    assert "tool_calls" not in shaped["choices"][0]["message"] and parsed.choices[0].model_extra == {}
    choice = {"index": 0, "delta": {"content": "h"}, "finish_reason": None, "token_ids": None}
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "x", "prompt_token_ids": None,
             "choices": [choice]}  # fmt: skip
    shaped_chunk = wire.chunk_object(chunk, "m", "fp_1", with_usage=True)
    assert shaped_chunk["usage"] is None and ChatCompletionChunk.model_validate(shaped_chunk).model_extra == {}
    assert "usage" not in wire.chunk_object(chunk, "m", "fp_1", with_usage=False)
