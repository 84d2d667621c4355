"""`finetune chat MODEL`: talk to a base or fine-tuned model, the answer streamed as it is generated."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import typer

from app.cli.context import CliState, JsonOption, state_of
from app.cli.errors import ApiError

# Generation can take long on a busy engine; only a silent connection counts as dead.
STREAM_TIMEOUT = httpx.Timeout(10.0, read=300.0)
EXIT_WORDS = {"/exit", "/quit"}


def chat(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="A base model or one of your ft: models (see `finetune models list`).")],
    prompt: Annotated[str | None, typer.Option("--prompt", "-p", help="Ask once, print the answer, exit.")] = None,
    system: Annotated[str | None, typer.Option("--system", help="A system message before the conversation.")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=1, help="Most tokens per answer.")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", min=0, max=2, help="0: greedy.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Chat with MODEL: type a message, read the streamed answer; /exit or Ctrl-D ends (--prompt: one question)."""
    state = state_of(ctx)
    options = {"max_tokens": max_tokens, "temperature": temperature}
    messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    if prompt is not None:
        messages.append({"role": "user", "content": prompt})
        _answer(state, model, messages, options)
        return
    interactive = sys.stdin.isatty()
    if interactive:
        state.err.print(f"Chatting with {model}. /exit or Ctrl-D ends.")
    for line in _lines(state, interactive):
        messages.append({"role": "user", "content": line})
        messages.append({"role": "assistant", "content": _answer(state, model, messages, options)})


def _lines(state: CliState, interactive: bool) -> Iterator[str]:
    while True:
        try:
            line = state.out.input("[bold]> [/]") if interactive else input()
        except EOFError:
            return
        if line.strip() in EXIT_WORDS:
            return
        if line.strip():
            yield line


def _answer(state: CliState, model: str, messages: list[dict[str, str]], options: dict[str, Any]) -> str:
    """Send the conversation; print the answer as it streams (or, with --json, the completion object)."""
    body: dict[str, Any] = {"model": model, "messages": messages, **{k: v for k, v in options.items() if v is not None}}
    client = state.client()
    if state.json:
        completion = client.post("/v1/chat/completions", body, timeout=STREAM_TIMEOUT.read)
        state.out.print_json(data=completion)
        return str(completion["choices"][0]["message"]["content"] or "")
    body |= {"stream": True, "stream_options": {"include_usage": True}}
    parts: list[str] = []
    with client.stream("/v1/chat/completions", method="POST", json=body, timeout=STREAM_TIMEOUT) as response:
        for chunk in _chunks(response):
            for choice in chunk.get("choices") or []:
                text = (choice.get("delta") or {}).get("content") or ""
                parts.append(text)
                state.out.print(text, end="", markup=False, highlight=False)
    state.out.print()
    return "".join(parts)


def _chunks(response: httpx.Response) -> Iterator[dict[str, Any]]:
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        chunk = json.loads(payload)
        if "error" in chunk:  # the stream broke after it began (the engine went away mid-answer)
            raise ApiError(200, str(response.request.url), chunk["error"])
        yield chunk
