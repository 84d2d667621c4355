"""Reading OpenAI-format datasets and turning them into what the trainers consume.

One tokenization path serves both the CPU validation report (`tokenize_report`) and the
engine, so the token counts a user is shown are the ones that get trained.

Chat SFT lines are `{"messages": [{"role", "content", "weight"?}], "tools"?}`; preference
lines are `{"input": {"messages", "tools"?}, "preferred_output": [...], "non_preferred_output": [...]}`.
Loss falls on assistant tokens only, and not on assistant messages with `"weight": 0`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from app.training.errors import ExampleError, MissingChatTemplateError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100
ROLES = frozenset({"system", "user", "assistant", "tool"})
GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")
Message = dict[str, Any]


@dataclass(frozen=True)
class ChatExample:
    line: int
    messages: list[Message]
    tools: list[Any] | None


@dataclass(frozen=True)
class PreferenceExample:
    line: int
    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    tools: list[Any] | None


@dataclass(frozen=True)
class TokenizedChat:
    line: int
    input_ids: list[int]
    labels: list[int]

    @property
    def has_trainable_tokens(self) -> bool:
        return any(label != IGNORE_INDEX for label in self.labels)

    def truncated(self, max_length: int) -> TokenizedChat:
        return TokenizedChat(self.line, self.input_ids[:max_length], self.labels[:max_length])


@dataclass(frozen=True)
class PreferenceLengths:
    """Token counts of the two sequences the model processes for one preference pair."""

    prompt: int
    prompt_chosen: int
    prompt_rejected: int

    @property
    def longest(self) -> int:
        return max(self.prompt_chosen, self.prompt_rejected)

    @property
    def total(self) -> int:
        return self.prompt_chosen + self.prompt_rejected


def load_tokenizer(
    base_model: str, revision: str | None = None, chat_template: str | None = None
) -> PreTrainedTokenizerBase:
    """The base model's tokenizer with the chat template that training will use.

    Raises MissingChatTemplateError when neither the tokenizer nor the override has one.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model, revision=revision)
    if chat_template:
        tokenizer.chat_template = chat_template
    if not tokenizer.chat_template:
        raise MissingChatTemplateError(
            f"the tokenizer of {base_model!r} has no chat template and none was given: set a chat_template "
            "for this base model in the catalog (or in the job config)"
        )
    if tokenizer.pad_token is None:
        # Padding positions never carry loss nor attention, so any known token serves.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | ExampleError]]:
    """(1-based line number, parsed object or the error) for every non-blank line."""
    with Path(path).open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as error:
                yield number, ExampleError("invalid_json", f"not valid JSON: {error.msg}", number)
                continue
            if not isinstance(record, dict):
                yield number, ExampleError("invalid_format", "each line must be a JSON object", number)
                continue
            yield number, record


def parse_chat_example(record: dict[str, Any], line: int) -> ChatExample:
    messages = _parse_messages(record.get("messages"), line, "messages")
    assistant = [message for message in messages if message["role"] == "assistant"]
    if not assistant:
        raise ExampleError("no_assistant_message", "messages need at least one assistant message", line)
    if not any(message.get("weight", 1) for message in assistant):
        raise ExampleError("no_trainable_tokens", "every assistant message has weight 0", line)
    return ChatExample(line, messages, _parse_tools(record, line))


def parse_preference_example(record: dict[str, Any], line: int) -> PreferenceExample:
    source = record.get("input")
    if not isinstance(source, dict):
        raise ExampleError("invalid_format", "'input' must be an object with 'messages'", line)
    prompt = _parse_messages(source.get("messages"), line, "input.messages")
    chosen = _parse_messages(record.get("preferred_output"), line, "preferred_output")
    rejected = _parse_messages(record.get("non_preferred_output"), line, "non_preferred_output")
    for name, output in (("preferred_output", chosen), ("non_preferred_output", rejected)):
        if any(message["role"] != "assistant" for message in output):
            raise ExampleError("invalid_role", f"{name} may only hold assistant messages", line)
    return PreferenceExample(line, prompt, chosen, rejected, _parse_tools(source, line))


def iter_tokenized_chat(tokenizer: PreTrainedTokenizerBase, path: Path) -> Iterator[TokenizedChat | ExampleError]:
    """Every line of a chat SFT file, tokenized with its labels, or the reason it cannot be."""
    for line, record in read_jsonl(path):
        if isinstance(record, ExampleError):
            yield record
            continue
        try:
            yield tokenize_chat_example(tokenizer, parse_chat_example(record, line))
        except ExampleError as error:
            yield error


def iter_preferences(
    tokenizer: PreTrainedTokenizerBase, path: Path
) -> Iterator[tuple[PreferenceExample, PreferenceLengths] | ExampleError]:
    """Every line of a preference file with its token counts, or the reason it cannot be used."""
    for line, record in read_jsonl(path):
        if isinstance(record, ExampleError):
            yield record
            continue
        try:
            example = parse_preference_example(record, line)
            yield example, preference_lengths(tokenizer, example)
        except ExampleError as error:
            yield error


def tokenize_chat_example(tokenizer: PreTrainedTokenizerBase, example: ChatExample) -> TokenizedChat:
    """Token ids and labels: the ids on trained assistant tokens, IGNORE_INDEX everywhere else."""
    text, spans = render_with_assistant_spans(tokenizer, example.messages, example.tools, example.line)
    weights = [message.get("weight", 1) for message in example.messages if message["role"] == "assistant"]
    trained_spans = [span for span, weight in zip(spans, weights, strict=True) if weight]
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids: list[int] = list(encoding["input_ids"])
    labels = [IGNORE_INDEX] * len(input_ids)
    for index, (token_start, token_end) in enumerate(encoding["offset_mapping"]):
        # A token that overlaps a trained span belongs to it (same rule as transformers' assistant mask).
        if any(token_end > start and token_start < end for start, end in trained_spans):
            labels[index] = input_ids[index]
    return TokenizedChat(example.line, input_ids, labels)


def render_with_assistant_spans(
    tokenizer: PreTrainedTokenizerBase, messages: list[Message], tools: list[Any] | None, line: int
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character span of each assistant message, in order.

    Templates with `{% generation %}` mark the spans themselves; for the many that lack it the
    span of assistant message i is what rendering messages[:i+1] adds to messages[:i] + the
    generation prompt, which holds whenever the template renders conversations incrementally.
    """
    from transformers.utils.chat_template_utils import render_jinja_template

    template = tokenizer.get_chat_template(None, tools)
    n_assistant = sum(1 for message in messages if message["role"] == "assistant")
    try:
        if GENERATION_TAG.search(template):
            special_tokens: dict[str, Any] = dict(tokenizer.special_tokens_map)
            # Annotated as returning str, it returns (texts, generation spans per conversation).
            rendered, indices = cast(
                tuple[list[str], list[list[tuple[int, int]]]],
                render_jinja_template(
                    conversations=[messages],
                    tools=tools,
                    chat_template=template,
                    return_assistant_tokens_mask=True,
                    **special_tokens,
                ),
            )
            text = rendered[0]
            spans = [(int(start), int(end)) for start, end in indices[0]]
        else:
            text, spans = _incremental_spans(tokenizer, messages, tools, line)
    except ExampleError:
        raise
    except Exception as error:  # the template is user-supplied Jinja: any failure is this line's problem
        raise ExampleError("chat_template_error", f"the chat template failed: {error}", line) from error
    if len(spans) != n_assistant:
        raise ExampleError(
            "chat_template_error",
            f"the chat template marked {len(spans)} assistant spans for {n_assistant} assistant messages",
            line,
        )
    return text, spans


def preference_lengths(tokenizer: PreTrainedTokenizerBase, example: PreferenceExample) -> PreferenceLengths:
    """Token counts as TRL's DPOTrainer builds them: prompt + generation prompt, then each completion."""
    try:
        prompt = _render(tokenizer, example.prompt, example.tools, add_generation_prompt=True)
        chosen = _render(tokenizer, example.prompt + example.chosen, example.tools)
        rejected = _render(tokenizer, example.prompt + example.rejected, example.tools)
    except Exception as error:
        raise ExampleError("chat_template_error", f"the chat template failed: {error}", example.line) from error
    return PreferenceLengths(*(_count_tokens(tokenizer, text) for text in (prompt, chosen, rejected)))


def trl_preference_row(example: PreferenceExample) -> dict[str, Any]:
    """The conversational preference row TRL's DPOTrainer expects (tools as JSON text for Arrow)."""
    return {
        "prompt": example.prompt,
        "chosen": example.chosen,
        "rejected": example.rejected,
        "tools": json.dumps(example.tools) if example.tools else None,
    }


def _incremental_spans(
    tokenizer: PreTrainedTokenizerBase, messages: list[Message], tools: list[Any] | None, line: int
) -> tuple[str, list[tuple[int, int]]]:
    text = _render(tokenizer, messages, tools)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        if index == 0:
            raise ExampleError(
                "chat_template_error",
                "a conversation cannot open with an assistant message under a template without {% generation %} tags",
                line,
            )
        before = _render(tokenizer, messages[:index], tools, add_generation_prompt=True)
        through = _render(tokenizer, messages[: index + 1], tools)
        if not (text.startswith(through) and through.startswith(before)):
            raise ExampleError(
                "chat_template_error",
                "the chat template does not render this conversation incrementally, so the assistant "
                "tokens cannot be located; use a template with {% generation %} tags",
                line,
            )
        spans.append((len(before), len(through)))
    return text, spans


def _render(
    tokenizer: PreTrainedTokenizerBase,
    messages: list[Message],
    tools: list[Any] | None,
    add_generation_prompt: bool = False,
) -> str:
    rendered = tokenizer.apply_chat_template(
        messages, tools=tools, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    return str(rendered)


def _count_tokens(tokenizer: PreTrainedTokenizerBase, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _parse_messages(value: Any, line: int, field: str) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise ExampleError("invalid_format", f"'{field}' must be a non-empty list of messages", line)
    return [_parse_message(message, line, f"{field}[{index}]") for index, message in enumerate(value)]


def _parse_message(value: Any, line: int, where: str) -> Message:
    if not isinstance(value, dict):
        raise ExampleError("invalid_format", f"{where} must be an object", line)
    role = value.get("role")
    if role not in ROLES:
        raise ExampleError("invalid_role", f"{where}.role must be one of {', '.join(sorted(ROLES))}", line)
    message: Message = {"role": role, "content": _text_content(value.get("content"), line, where)}
    if "weight" in value:
        if role != "assistant" or value["weight"] not in (0, 1) or isinstance(value["weight"], bool):
            raise ExampleError("invalid_weight", f"{where}.weight must be 0 or 1, on assistant messages", line)
        message["weight"] = int(value["weight"])
    for key in ("name", "tool_calls", "tool_call_id"):
        if value.get(key) is not None:
            message[key] = value[key]
    if message["content"] is None and "tool_calls" not in message:
        raise ExampleError("missing_content", f"{where} has neither content nor tool_calls", line)
    return message


def _text_content(content: Any, line: int, where: str) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(part, dict) and part.get("type") == "text" for part in content):
        return "".join(str(part.get("text", "")) for part in content)
    raise ExampleError("invalid_content", f"{where}.content must be text or a list of text parts", line)


def _parse_tools(record: dict[str, Any], line: int) -> list[Any] | None:
    tools = record.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise ExampleError("invalid_format", "'tools' must be a list", line)
    return tools or None
