"""Token statistics of a training file under the base model's tokenizer and chat template.

Run by the CPU worker while a job is `validating_files`: the counts feed the auto
hyperparameters and the estimate, the over-long lines and per-line errors go back to
the user before any GPU time is spent. Uses the engine's own tokenization (data.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from app.datasets.codes import TokenizerErrorCode
from app.training.data import iter_preferences, iter_tokenized_chat, load_tokenizer
from app.training.errors import ExampleError, MissingChatTemplateError

MAX_LISTED = 1000


@dataclass(frozen=True)
class LineError:
    line: int | None  # None: the whole file (e.g. the tokenizer has no chat template)
    code: str
    message: str


@dataclass(frozen=True)
class OverLength:
    line: int
    n_tokens: int


@dataclass
class TokenReport:
    method: str
    max_seq_length: int
    truncate: bool
    n_examples: int = 0
    total_tokens: int = 0  # what training processes: over-long examples count as truncated when truncating
    trainable_tokens: int = 0  # tokens that carry loss (sft only; 0 for dpo)
    max_tokens: int = 0
    over_length: list[OverLength] = field(default_factory=list)
    n_over_length: int = 0
    errors: list[LineError] = field(default_factory=list)
    n_errors: int = 0

    @property
    def ok(self) -> bool:
        return self.n_errors == 0 and (self.truncate or self.n_over_length == 0)

    def add_error(self, error: LineError) -> None:
        self.n_errors += 1
        if len(self.errors) < MAX_LISTED:
            self.errors.append(error)

    def add_example(self, line: int, sequence_lengths: tuple[int, ...]) -> None:
        """One example made of these sequences (one for sft; prompt+chosen, prompt+rejected for dpo)."""
        longest = max(sequence_lengths)
        self.n_examples += 1
        self.max_tokens = max(self.max_tokens, longest)
        if longest > self.max_seq_length:
            self.n_over_length += 1
            if len(self.over_length) < MAX_LISTED:
                self.over_length.append(OverLength(line, longest))
        cap = self.max_seq_length if self.truncate else longest
        self.total_tokens += sum(min(length, cap) for length in sequence_lengths)


def token_report(
    path: Path,
    base_model: str,
    method: str,
    max_seq_length: int,
    truncate: bool,
    chat_template: str | None = None,
    revision: str | None = None,
) -> TokenReport:
    """Tokenize every example of a chat SFT (method "supervised") or preference ("dpo") JSONL file."""
    if method not in ("supervised", "dpo"):
        raise ValueError(f"method: must be 'supervised' or 'dpo', got {method!r}")
    report = TokenReport(method=method, max_seq_length=max_seq_length, truncate=truncate)
    try:
        tokenizer = load_tokenizer(base_model, revision, chat_template)
    except MissingChatTemplateError as error:
        # Every line would fail the same way: one file-level error says it once.
        report.add_error(LineError(None, TokenizerErrorCode.TOKENIZER_MISSING_CHAT_TEMPLATE, str(error)))
        return report
    if method == "dpo":
        for pair in iter_preferences(tokenizer, Path(path)):
            if isinstance(pair, ExampleError):
                report.add_error(LineError(pair.line, pair.code, pair.message))
                continue
            example, lengths = pair
            report.add_example(example.line, (lengths.prompt_chosen, lengths.prompt_rejected))
        return report
    for chat in iter_tokenized_chat(tokenizer, Path(path)):
        if isinstance(chat, ExampleError):
            report.add_error(LineError(chat.line, chat.code, chat.message))
            continue
        report.add_example(chat.line, (len(chat.input_ids),))
        kept = chat.truncated(max_seq_length) if truncate else chat
        report.trainable_tokens += kept.trainable_tokens
    return report
