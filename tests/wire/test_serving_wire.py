"""The serving answers (`/v1/chat/completions`) against OpenAI's own schemas, as the fine-tuning ones are.

The engine (vLLM) answers with fields of its own; `app.inference.wire` cuts them to OpenAI's
objects. Here engine answers as vLLM writes them, streamed and not, with and without logprobs,
are shaped and validated against the vendored `CreateChatCompletionResponse` and
`CreateChatCompletionStreamResponse` (tests/inference runs the real engine).
"""

from __future__ import annotations

from typing import Any

from app.inference import wire
from tests.wire.openai_wire import violations

LOGPROBS = {"content": [{"token": "hi", "logprob": -0.1, "bytes": [104, 105],
                         "top_logprobs": [{"token": "hi", "logprob": -0.1, "bytes": [104, 105]}]}]}  # fmt: skip


def engine_completion(logprobs: Any = None) -> dict[str, Any]:
    """A chat.completion as vLLM's OpenAI server writes it, its own fields included."""
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "internal-name",
        "choices": [{"index": 0, "finish_reason": "stop", "stop_reason": None, "token_ids": None, "logprobs": logprobs,
                     "message": {"role": "assistant", "content": "hi", "refusal": None, "annotations": None,
                                 "audio": None, "function_call": None, "reasoning": None, "reasoning_content": None,
                                 "tool_calls": []}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4, "prompt_tokens_details": None},
        "service_tier": None, "system_fingerprint": None, "prompt_logprobs": None, "prompt_token_ids": None,
        "kv_transfer_params": None,
    }  # fmt: skip


def engine_chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> dict[str, Any]:
    choices = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish, "stop_reason": None,
                "token_ids": None}] if delta else []  # fmt: skip
    return {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1, "model": "internal-name",
            "choices": choices, "usage": usage, "prompt_token_ids": None}  # fmt: skip


def test_a_completion_matches_openais_schema() -> None:
    for logprobs in (None, LOGPROBS):
        shaped = wire.completion_object(engine_completion(logprobs), "ft:tiny:acme:demo:abc", "fp_1")
        assert shaped["model"] == "ft:tiny:acme:demo:abc"
        assert violations("CreateChatCompletionResponse", shaped) == []


def test_every_chunk_of_a_stream_matches_openais_schema() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    stream = [engine_chunk({"role": "assistant", "content": ""}), engine_chunk({"content": "hi"}),
              engine_chunk({"content": "!"}, finish="stop"), engine_chunk({}, usage=usage)]  # fmt: skip
    for with_usage in (True, False):
        for chunk in stream[: 4 if with_usage else 3]:
            shaped = wire.chunk_object(chunk, "tiny-llama", "fp_1", with_usage=with_usage)
            assert violations("CreateChatCompletionStreamResponse", shaped) == [], shaped


def test_the_schemas_would_see_an_engine_field() -> None:
    """The check has teeth: an unshaped engine answer breaks the schema (OpenAI's choices allow no extras)."""
    problems = violations("CreateChatCompletionResponse", engine_completion())
    assert problems, "the vendored schema accepts vLLM's raw answer: this test would prove nothing"
