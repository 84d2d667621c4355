from __future__ import annotations

import json
import random
import tracemalloc
from collections.abc import Iterable
from pathlib import Path

import pytest

from app.datasets.codes import ErrorCode
from app.files.validation import (
    StreamingValidator,
    ValidationLimits,
    ValidationReport,
    validate_path,
)

from .corpus import (
    CORPUS_LIMITS,
    BadFile,
    assistant,
    bad_file_corpus,
    chat,
    good_chat,
    good_chat_file,
    good_preference_file,
    jsonl,
    many_bad_lines_file,
    user,
)

CORPUS = bad_file_corpus()


def validate(chunks: Iterable[bytes], limits: ValidationLimits = CORPUS_LIMITS) -> ValidationReport:
    validator = StreamingValidator(limits)
    for chunk in chunks:
        validator.feed(chunk)
    return validator.finish()


def random_chunks(content: bytes, seed: int, largest: int = 4096) -> list[bytes]:
    rng = random.Random(seed)
    chunks, position = [], 0
    while position < len(content):
        size = rng.randint(1, largest)
        chunks.append(content[position : position + size])
        position += size
    return chunks


def pairs(report: ValidationReport) -> list[tuple[int, str]]:
    return [(error.line, error.code) for error in report.errors]


def test_corpus_is_large_deterministic_and_covers_every_code() -> None:
    assert len(CORPUS) >= 25
    assert len({bad.name for bad in CORPUS}) == len(CORPUS)
    assert [bad.content for bad in bad_file_corpus()] == [bad.content for bad in CORPUS]
    covered = {code for bad in CORPUS for _, code in bad.expected}
    assert covered == {code.value for code in ErrorCode}


@pytest.mark.parametrize("bad", CORPUS, ids=lambda bad: bad.name)
def test_corpus_file_gives_exactly_its_errors(bad: BadFile) -> None:
    report = validate([bad.content])
    assert pairs(report) == bad.expected
    assert report.error_count == len(bad.expected)
    assert not report.ok
    for error in report.errors:
        if error.line:
            assert error.message.startswith(f"line {error.line}"), error.message
        assert len(error.message) > 30, error.message


@pytest.mark.parametrize("bad", CORPUS, ids=lambda bad: bad.name)
def test_chunking_never_changes_the_report(bad: BadFile) -> None:
    whole = validate([bad.content]).to_dict()
    assert validate(bad.content[i : i + 1] for i in range(len(bad.content))).to_dict() == whole
    for seed in range(3):
        assert validate(random_chunks(bad.content, seed)).to_dict() == whole


def test_multibyte_characters_split_at_every_byte() -> None:
    content = good_chat_file()
    assert len(content) != len(content.decode("utf-8"))  # the file really holds multi-byte characters
    whole = validate([content]).to_dict()
    for cut in range(1, len(content)):
        assert validate([content[:cut], content[cut:]]).to_dict() == whole


def test_good_chat_file_statistics() -> None:
    content = good_chat_file()
    report = validate(random_chunks(content, seed=1, largest=64))
    assert report.ok and report.errors == [] and report.error_count == 0
    assert report.data_format == "chat"
    assert report.statistics == {
        "format": "chat",
        "examples": 5,
        "messages": 15,
        "assistant_messages": 7,
        # 55 + 17 + 81 (with the tool call's name and arguments) + 35 + 12, counted by hand
        "characters": 200,
        "max_example_characters": 81,
        "bytes": len(content),
        "lines": 5,
        "blank_lines": 0,
        "invalid_lines": 0,
    }


def test_good_preference_file_statistics() -> None:
    report = validate([good_preference_file()])
    assert report.ok, report.errors
    assert report.data_format == "preference"
    stats = report.statistics
    assert (stats["examples"], stats["messages"], stats["assistant_messages"]) == (3, 10, 6)
    assert (stats["characters"], stats["max_example_characters"]) == (115, 50)


def test_message_names_the_line_the_path_and_the_fix() -> None:
    content = jsonl(*[good_chat()] * 6, chat(user(), {"role": "bot", "content": "Hi"}, assistant()))
    (error,) = validate([content]).errors
    assert error.line == 7
    assert error.param == "messages[1].role"
    assert error.message == "line 7: messages[1].role is 'bot'; expected one of system, user, assistant, tool"


@pytest.mark.parametrize(
    "content",
    [
        jsonl(good_chat(), good_chat()),
        jsonl(good_chat(), good_chat()) + b"\n\n  \n",
        jsonl(good_chat(), good_chat()).rstrip(b"\n"),
        jsonl(good_chat(), good_chat()).replace(b"\n", b"\r\n"),
        b"\xef\xbb\xbf" + jsonl(good_chat(), good_chat()),
    ],
    ids=["plain", "trailing_blank_lines", "no_final_newline", "crlf", "utf8_bom"],
)
def test_accepted_layouts(content: bytes) -> None:
    report = validate([content])
    assert report.ok, report.errors
    assert report.statistics["examples"] == 2


def test_lines_statistic_counts_physical_lines() -> None:
    assert validate([b"\n".join([line(good_chat()).strip()] * 3)]).statistics["lines"] == 3
    trailing = validate([jsonl(good_chat()) + b"\n\n"]).statistics
    assert (trailing["lines"], trailing["blank_lines"]) == (3, 2)


def line(value: object) -> bytes:
    return json.dumps(value).encode() + b"\n"


def test_error_listing_is_capped_but_the_count_is_not() -> None:
    bad = many_bad_lines_file(total=700, every=7)
    limits = ValidationLimits(max_errors_listed=10)
    report = validate([bad.content], limits)
    assert report.error_count == len(bad.expected) == 100
    assert pairs(report) == bad.expected[:10]
    assert report.statistics["invalid_lines"] == 100
    assert report.statistics["examples"] == 600


def test_a_long_run_of_blank_lines_is_counted_without_listing_it() -> None:
    content = jsonl(good_chat()) + b"\n" * 200_000 + jsonl(good_chat())
    report = validate([content], ValidationLimits(max_errors_listed=5))
    assert report.error_count == 200_000
    assert pairs(report) == [(line, "blank_line") for line in range(2, 7)]


def test_lines_past_the_limit_are_counted_not_validated() -> None:
    limits = ValidationLimits(max_lines=10)
    content = jsonl(*[good_chat()] * 10, b"garbage\n", good_chat(), b"more garbage\n")
    report = validate([content], limits)
    assert pairs(report) == [(11, "too_many_lines")]
    assert report.statistics["lines"] == 13
    assert report.statistics["examples"] == 10


def test_exactly_max_lines_with_trailing_newlines_is_fine() -> None:
    report = validate([jsonl(*[good_chat()] * 10) + b"\n\n"], ValidationLimits(max_lines=10))
    assert report.ok, report.errors


def test_finish_is_final() -> None:
    validator = StreamingValidator(CORPUS_LIMITS)
    validator.feed(good_chat_file())
    report = validator.finish()
    assert validator.finish() is report
    with pytest.raises(RuntimeError):
        validator.feed(b"{}")


def test_validate_path_matches_streaming(tmp_path: Path) -> None:
    bad = many_bad_lines_file()
    path = tmp_path / "train.jsonl"
    path.write_bytes(bad.content)
    assert validate_path(path, CORPUS_LIMITS) == validate([bad.content])


def test_report_is_json_serialisable() -> None:
    report = validate([many_bad_lines_file().content])
    decoded = json.loads(json.dumps(report.to_dict()))
    assert decoded["errors"][0] == {
        "line": 3,
        "code": "invalid_json",
        "message": decoded["errors"][0]["message"],
        "param": None,
    }


def test_a_100_mb_line_is_never_buffered() -> None:
    """The validator holds at most max_line_bytes of a line, however long the line is."""
    line_size = 100 * 1024 * 1024
    piece = b"x" * (1024 * 1024)  # one object fed 100 times: the test itself allocates nothing per chunk
    tail = jsonl(good_chat())
    limits = ValidationLimits()  # the production default, 4 MiB per line
    tracemalloc.start()
    try:
        validator = StreamingValidator(limits)
        validator.feed(b'{"messages": "')
        for _ in range(line_size // len(piece)):
            validator.feed(piece)
        validator.feed(b'"}\n' + tail)
        report = validator.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limits.max_line_bytes + 2 * len(piece), f"peak {peak} bytes"
    assert peak < line_size / 10
    assert pairs(report) == [(1, "line_too_long")]
    assert str(line_size + len(b'{"messages": ""}')) in report.errors[0].message
    assert report.statistics["examples"] == 1


def test_a_100_mb_line_in_one_chunk_is_not_copied() -> None:
    limits = ValidationLimits()
    head = jsonl(*[good_chat()] * 100)  # so the huge line starts past the 8 KiB the validator sniffs
    assert len(head) > 8192
    chunk = head + b'{"messages": "' + b"x" * (100 * 1024 * 1024) + b'"}\n' + jsonl(good_chat())
    tracemalloc.start()
    try:
        validator = StreamingValidator(limits)
        validator.feed(chunk)
        report = validator.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, f"peak {peak} bytes"
    assert pairs(report) == [(101, "line_too_long")]
    assert report.statistics["examples"] == 101


@pytest.mark.parametrize(("name", "data_format"), [("train.jsonl", "chat"), ("dpo.jsonl", "preference")])
def test_the_repository_examples_are_valid_datasets(name: str, data_format: str) -> None:
    """examples/ (the README's quick start, docs/datasets.md): valid as shipped, enough lines for a job."""
    from app.core.config import Settings

    content = (Path(__file__).resolve().parents[2] / "examples" / name).read_bytes()
    report = validate([content])
    assert report.ok, report.errors
    assert report.data_format == data_format
    assert report.statistics["examples"] >= Settings.model_fields["min_training_examples"].default
