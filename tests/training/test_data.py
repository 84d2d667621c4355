"""Labels, chat templates and the validation-time token report, on the tiny model's tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.training.data import (
    IGNORE_INDEX,
    load_tokenizer,
    parse_chat_example,
    tokenize_chat_example,
)
from app.training.errors import MissingChatTemplateError
from app.training.tiny_model import CHAT_TEMPLATE
from app.training.tokenize_report import token_report

from .conftest import write_chat_file, write_preference_file

CONVERSATION = {
    "messages": [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "what time"},
        {"role": "assistant", "content": "Ignore this draft.", "weight": 0},
        {"role": "user", "content": "again please"},
        {"role": "assistant", "content": "Number five today.", "weight": 1},
    ]
}


def trained_text(tokenizer, labels: list[int]) -> str:  # type: ignore[no-untyped-def]
    return tokenizer.decode([label for label in labels if label != IGNORE_INDEX])


def test_only_weighted_assistant_tokens_carry_labels(tiny_model: Path) -> None:
    tokenizer = load_tokenizer(str(tiny_model))
    example = tokenize_chat_example(tokenizer, parse_chat_example(CONVERSATION, 1))
    assert len(example.labels) == len(example.input_ids)
    assert trained_text(tokenizer, example.labels) == "Number five today.<|eot_id|>"
    # Every labelled position keeps its own token id; everything else (system, user, headers, the
    # weight-0 answer) is IGNORE_INDEX.
    for token, label in zip(example.input_ids, example.labels, strict=True):
        assert label in (token, IGNORE_INDEX)
    assert sum(label != IGNORE_INDEX for label in example.labels) == len(
        tokenizer("Number five today.<|eot_id|>", add_special_tokens=False)["input_ids"]
    )


def test_weight_one_on_both_answers_trains_both(tiny_model: Path) -> None:
    tokenizer = load_tokenizer(str(tiny_model))
    both = json.loads(json.dumps(CONVERSATION))
    both["messages"][2]["weight"] = 1
    example = tokenize_chat_example(tokenizer, parse_chat_example(both, 1))
    assert trained_text(tokenizer, example.labels) == "Ignore this draft.<|eot_id|>Number five today.<|eot_id|>"


def test_template_without_generation_tags_gives_the_same_labels(tiny_model: Path) -> None:
    plain = CHAT_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    tagged = load_tokenizer(str(tiny_model))
    untagged = load_tokenizer(str(tiny_model), chat_template=plain)
    example = parse_chat_example(CONVERSATION, 1)
    assert tokenize_chat_example(untagged, example) == tokenize_chat_example(tagged, example)


def test_missing_chat_template_is_a_clear_error(model_without_template: Path) -> None:
    with pytest.raises(MissingChatTemplateError, match="no chat template"):
        load_tokenizer(str(model_without_template))
    # An override from the catalog or the job makes the same model usable.
    assert load_tokenizer(str(model_without_template), chat_template=CHAT_TEMPLATE).chat_template


def test_token_report_counts_and_finds_over_long_lines(tiny_model: Path, tmp_path: Path) -> None:
    long_example = {
        "messages": [
            {"role": "user", "content": "tell me a story"},
            {"role": "assistant", "content": " ".join(["river light good answer"] * 60)},
        ]
    }
    path = write_chat_file(tmp_path / "train.jsonl", 5, extra=[long_example])
    with path.open("a") as handle:
        handle.write("{not json\n")
        handle.write(json.dumps({"messages": [{"role": "user", "content": "no answer"}]}) + "\n")

    report = token_report(path, str(tiny_model), "supervised", max_seq_length=64, truncate=True)

    assert report.n_examples == 6
    assert [(item.line, item.n_tokens > 64) for item in report.over_length] == [(6, True)]
    assert report.n_over_length == 1
    assert [(error.line, error.code) for error in report.errors] == [
        (7, "invalid_json"),
        (8, "example_missing_assistant_message"),
    ]
    assert report.max_tokens == report.over_length[0].n_tokens
    # Truncation is on, so the long example counts for max_seq_length tokens.
    strict = token_report(path, str(tiny_model), "supervised", max_seq_length=64, truncate=False)
    assert strict.total_tokens - report.total_tokens == report.over_length[0].n_tokens - 64
    assert not strict.ok and not report.ok  # two bad lines either way


def test_token_report_on_a_model_without_chat_template(model_without_template: Path, tmp_path: Path) -> None:
    path = write_chat_file(tmp_path / "train.jsonl", 3)
    report = token_report(path, str(model_without_template), "supervised", max_seq_length=128, truncate=True)
    assert [(error.line, error.code) for error in report.errors] == [(None, "tokenizer_missing_chat_template")]
    with_override = token_report(
        path, str(model_without_template), "supervised", 128, truncate=True, chat_template=CHAT_TEMPLATE
    )
    assert with_override.ok and with_override.n_examples == 3


def test_token_report_for_preference_files(tiny_model: Path, tmp_path: Path) -> None:
    path = write_preference_file(tmp_path / "prefs.jsonl", 4)
    report = token_report(path, str(tiny_model), "dpo", max_seq_length=128, truncate=True)
    assert report.ok and report.n_examples == 4
    # Both sequences (prompt+chosen, prompt+rejected) are processed, each longer than the prompt alone.
    assert report.total_tokens > 2 * 4 * 10
