from __future__ import annotations

from pathlib import Path

import pytest

from app.vectors.examples import (
    ExampleFormatError,
    LineExample,
    example_from_record,
    normalized_hash,
    read_examples,
)

from .conftest import write_jsonl

CHAT = {
    "messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": [{"type": "text", "text": "And"}, {"type": "text", "text": "3 + 3?"}]},
        {"role": "assistant", "content": "6", "weight": 0},
    ]
}
DPO = {
    "input": {"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]},
    "preferred_output": [{"role": "assistant", "content": "Hello! How can I help?"}],
    "non_preferred_output": [{"role": "assistant", "content": "What."}],
}


def test_chat_text_holds_user_and_assistant_turns_without_the_system_prompt() -> None:
    example = example_from_record(CHAT)
    assert example.text == "user: What is 2 + 2?\nassistant: 4\nuser: And 3 + 3?\nassistant: 6"
    assert example.role_mix == {"system": 1, "user": 2, "assistant": 2}


def test_system_prompt_is_embedded_on_request() -> None:
    assert example_from_record(CHAT, include_system=True).text.startswith("system: Be terse.\n")


def test_preference_text_is_input_plus_preferred_output_only() -> None:
    example = example_from_record(DPO)
    assert example.text == "user: Hi\nassistant: Hello! How can I help?"
    assert "What." not in example.text
    assert example.role_mix == {"system": 1, "user": 1, "assistant": 1}


def test_rejected_answer_still_makes_two_preference_lines_different() -> None:
    other = {**DPO, "non_preferred_output": [{"role": "assistant", "content": "Go away."}]}
    assert example_from_record(DPO).text == example_from_record(other).text
    assert example_from_record(DPO).text_hash != example_from_record(other).text_hash


def test_tool_calls_are_part_of_the_text() -> None:
    record = {
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "tool_calls": [{"function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}],
            },
            {"role": "tool", "content": "4 C, rain"},
        ]
    }
    example = example_from_record(record)
    assert 'assistant: weather({"city": "Oslo"})' in example.text
    assert example.role_mix == {"user": 1, "assistant": 1, "tool": 1}


def test_token_count_grows_with_the_conversation() -> None:
    short = example_from_record({"messages": [{"role": "user", "content": "hi"}]})
    long = example_from_record({"messages": [{"role": "user", "content": "hi " * 300}]})
    assert 0 < short.token_count < 5
    assert 380 < long.token_count < 420


def test_hash_ignores_case_and_whitespace_but_not_words() -> None:
    assert normalized_hash("User: Hello   World\n") == normalized_hash("user: hello world")
    assert normalized_hash("user: hello world") != normalized_hash("user: hello word")


@pytest.mark.parametrize(
    "record",
    [[1, 2], {"prompt": "x"}, {"messages": "text"}, {"input": "x", "preferred_output": []}],
)
def test_records_in_no_known_format_are_refused(record: object) -> None:
    with pytest.raises(ExampleFormatError):
        example_from_record(record)


def test_reading_a_file_numbers_lines_from_one_and_reports_bad_ones(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mixed.jsonl", [CHAT, "{broken", "", DPO, {"prompt": "legacy"}])
    items = list(read_examples(path))
    assert [item.line for item in items if isinstance(item, LineExample)] == [1, 4]
    assert [item for item in items if isinstance(item, int)] == [2, 5]
