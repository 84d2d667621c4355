"""Reading OpenAI-format datasets and turning them into what the trainers consume.

One tokenization path serves both the CPU validation report (`tokenize_report`) and the
engine, so the token counts a user is shown are the ones that get trained.

What a line must be is defined once, in app/datasets (the format upload validation checks): a
line that breaks it is an `ExampleError` with the same code the upload would have reported.
Loss falls on assistant tokens only, and not on assistant messages with `"weight": 0`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from app.datasets.codes import Problem, TokenizerErrorCode
from app.datasets.lines import UTF8_BOM, parse_line
from app.datasets.schema import DataFormat, check_example
from app.training.errors import ExampleError, MissingChatTemplateError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100
# Examples rendered and tokenized per call of the fast tokenizer (it encodes a batch in Rust).
TOKENIZE_BATCH = 256
CHAT_TEMPLATE_ERROR = TokenizerErrorCode.CHAT_TEMPLATE_ERROR
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


@dataclass(frozen=True, eq=False)
class TokenizedChat:
    """Token ids and labels as int32 arrays: 4 bytes a token instead of a Python int's 28 plus its pointer."""

    line: int
    input_ids: np.ndarray
    labels: np.ndarray

    @property
    def has_trainable_tokens(self) -> bool:
        return bool((self.labels != IGNORE_INDEX).any())

    @property
    def trainable_tokens(self) -> int:
        return int((self.labels != IGNORE_INDEX).sum())

    def truncated(self, max_length: int) -> TokenizedChat:
        return TokenizedChat(self.line, self.input_ids[:max_length], self.labels[:max_length])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TokenizedChat):
            return NotImplemented
        same_ids = np.array_equal(self.input_ids, other.input_ids)
        return self.line == other.line and same_ids and np.array_equal(self.labels, other.labels)


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
    # transformers loads in seconds: the Celery workers import this module (token counts) at start
    # and pay for it only when they count.
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
    with Path(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                raw = raw.removeprefix(UTF8_BOM)
            if not raw.strip():
                continue
            record = parse_line(raw)
            yield number, _example_error(record, number) if isinstance(record, Problem) else record


def parse_chat_example(record: dict[str, Any], line: int) -> ChatExample:
    _refuse_problems(record, "chat", line)
    return ChatExample(line, [_message(message) for message in record["messages"]], record.get("tools") or None)


def parse_preference_example(record: dict[str, Any], line: int) -> PreferenceExample:
    _refuse_problems(record, "preference", line)
    source = record["input"]
    return PreferenceExample(
        line,
        [_message(message) for message in source["messages"]],
        [_message(message) for message in record["preferred_output"]],
        [_message(message) for message in record["non_preferred_output"]],
        source.get("tools") or None,
    )


def _refuse_problems(record: dict[str, Any], expected: DataFormat, line: int) -> None:
    problems = check_example(record, expected)
    if problems:
        raise _example_error(problems[0], line)


def _example_error(problem: Problem, line: int) -> ExampleError:
    # A problem with no param speaks of the line itself ("is not valid JSON ..."): say so.
    return ExampleError(problem.code, problem.message if problem.param else f"the line {problem.message}", line)


def _message(value: dict[str, Any]) -> Message:
    """A checked message as the chat template reads it: text parts joined, weight as an int."""
    content = value.get("content")
    if isinstance(content, list):
        content = "".join(str(part["text"]) for part in content)
    message: Message = {"role": value["role"], "content": content}
    if "weight" in value:
        message["weight"] = int(value["weight"])
    for key in ("name", "tool_calls", "tool_call_id"):
        if value.get(key) is not None:
            message[key] = value[key]
    return message


def iter_tokenized_chat(tokenizer: PreTrainedTokenizerBase, path: Path) -> Iterator[TokenizedChat | ExampleError]:
    """Every line of a chat SFT file, tokenized with its labels, or the reason it cannot be; in line order.

    Lines are tokenized TOKENIZE_BATCH at a time, so memory holds one batch, never the file.
    """
    batch: list[ChatExample] = []
    for line, record in read_jsonl(path):
        problem = record if isinstance(record, ExampleError) else None
        if problem is None:
            try:
                batch.append(parse_chat_example(cast(dict[str, Any], record), line))
            except ExampleError as error:
                problem = error
        if problem is not None or len(batch) >= TOKENIZE_BATCH:
            yield from tokenize_chat_examples(tokenizer, batch)
            batch = []
        if problem is not None:
            yield problem
    yield from tokenize_chat_examples(tokenizer, batch)


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
    (result,) = tokenize_chat_examples(tokenizer, [example])
    if isinstance(result, ExampleError):
        raise result
    return result


def tokenize_chat_examples(
    tokenizer: PreTrainedTokenizerBase, examples: list[ChatExample]
) -> list[TokenizedChat | ExampleError]:
    """Each example rendered once, all of them tokenized in one call, labels set from the offsets in numpy."""
    rendered: list[tuple[ChatExample, str, list[tuple[int, int]]] | ExampleError] = []
    for example in examples:
        try:
            text, spans = render_with_assistant_spans(tokenizer, example.messages, example.tools, example.line)
        except ExampleError as error:
            rendered.append(error)
            continue
        weights = [message.get("weight", 1) for message in example.messages if message["role"] == "assistant"]
        rendered.append((example, text, [span for span, weight in zip(spans, weights, strict=True) if weight]))
    texts = [item[1] for item in rendered if not isinstance(item, ExampleError)]
    encodings = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True) if texts else None
    results: list[TokenizedChat | ExampleError] = []
    index = 0
    for item in rendered:
        if isinstance(item, ExampleError):
            results.append(item)
            continue
        assert encodings is not None
        example, _, trained_spans = item
        input_ids = np.asarray(encodings["input_ids"][index], dtype=np.int32)
        offsets = np.asarray(encodings["offset_mapping"][index], dtype=np.int64).reshape(-1, 2)
        index += 1
        results.append(TokenizedChat(example.line, input_ids, _labels(input_ids, offsets, trained_spans)))
    return results


def _labels(input_ids: np.ndarray, offsets: np.ndarray, trained_spans: list[tuple[int, int]]) -> np.ndarray:
    # A token that overlaps a trained span belongs to it (same rule as transformers' assistant mask).
    trained = np.zeros(len(input_ids), dtype=bool)
    for start, end in trained_spans:
        trained |= (offsets[:, 1] > start) & (offsets[:, 0] < end)
    return np.where(trained, input_ids, np.int32(IGNORE_INDEX)).astype(np.int32)


def render_with_assistant_spans(
    tokenizer: PreTrainedTokenizerBase, messages: list[Message], tools: list[Any] | None, line: int
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character span of each assistant message, in order.

    Templates with `{% generation %}` mark the spans themselves; for the many that lack it the
    span of assistant message i is what rendering messages[:i+1] adds to messages[:i] + the
    generation prompt, which holds whenever the template renders conversations incrementally.
    """
    from transformers.utils.chat_template_utils import render_jinja_template  # as in load_tokenizer

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
        raise ExampleError(CHAT_TEMPLATE_ERROR, f"the chat template failed: {error}", line) from error
    if len(spans) != n_assistant:
        raise ExampleError(
            CHAT_TEMPLATE_ERROR,
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
        raise ExampleError(CHAT_TEMPLATE_ERROR, f"the chat template failed: {error}", example.line) from error
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
    """Two batched renders (every prefix before an answer, every prefix through it) instead of two per turn."""
    answers = [index for index, message in enumerate(messages) if message["role"] == "assistant"]
    if answers and answers[0] == 0:
        raise ExampleError(
            CHAT_TEMPLATE_ERROR,
            "a conversation cannot open with an assistant message under a template without {% generation %} tags",
            line,
        )
    befores = _render_many(tokenizer, [messages[:index] for index in answers], tools, add_generation_prompt=True)
    text, *throughs = _render_many(tokenizer, [messages, *(messages[: index + 1] for index in answers)], tools)
    spans = []
    for before, through in zip(befores, throughs, strict=True):
        if not (text.startswith(through) and through.startswith(before)):
            raise ExampleError(
                CHAT_TEMPLATE_ERROR,
                "the chat template does not render this conversation incrementally, so the assistant "
                "tokens cannot be located; use a template with {% generation %} tags",
                line,
            )
        spans.append((len(before), len(through)))
    return text, spans


def _render_many(
    tokenizer: PreTrainedTokenizerBase,
    conversations: list[list[Message]],
    tools: list[Any] | None,
    add_generation_prompt: bool = False,
) -> list[str]:
    if not conversations:
        return []
    rendered = tokenizer.apply_chat_template(
        conversations, tools=tools, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    return [str(text) for text in cast(list[str], rendered)]


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
