"""Duplicate and overlap reports on hand-written data with planted duplicates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.vectors.embedder import Embedder
from app.vectors.points import QdrantPointStore
from app.vectors.store import VectorStore

from .conftest import TUNED_THRESHOLD, chat_line, preference_line, shuffled, write_jsonl
from .corpus import DISTINCT, PARAPHRASES, Example

OWNER, ORGANIZATION = "user-dana", "org-north"
EXACT_SOURCES = {0: 1, 10: 1, 20: 2, 30: 1, 45: 1}  # distinct index -> extra copies
SHOUTED_SOURCE = 30  # its copy differs only in case and spacing


def distinct_record(index: int) -> dict[str, Any]:
    return preference_line(DISTINCT[index]) if index % 7 == 0 else chat_line(DISTINCT[index])


def pair_record(pair: int, member: int) -> dict[str, Any]:
    example = PARAPHRASES[pair][member]
    return preference_line(example) if pair % 4 == 0 else chat_line(example)


def shouted(example: Example) -> Example:
    user, assistant = example
    return "  ".join(user.upper().split()), assistant + "   "


def planted_file(path: Path) -> tuple[Path, dict[tuple[Any, ...], list[int]]]:
    """A shuffled file of distinct lines, exact copies and paraphrase pairs; tag -> line numbers."""
    tagged: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    tagged += [(("distinct", index), distinct_record(index)) for index in range(len(DISTINCT))]
    for index, copies in EXACT_SOURCES.items():
        record = distinct_record(index)
        if index == SHOUTED_SOURCE:
            record = chat_line(shouted(DISTINCT[index]))
        tagged += [(("distinct", index), record)] * copies
    for pair in range(len(PARAPHRASES)):
        tagged += [(("pair", pair), pair_record(pair, member)) for member in (0, 1)]
    tagged = shuffled(tagged, seed=7)
    lines: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for line, (tag, _) in enumerate(tagged, start=1):
        lines[tag].append(line)
    return write_jsonl(path, [record for _, record in tagged]), dict(lines)


def clean_file(path: Path) -> Path:
    records = [distinct_record(index) for index in range(len(DISTINCT))]
    records += [pair_record(pair, 0) for pair in range(len(PARAPHRASES))]
    return write_jsonl(path, shuffled(records, seed=11))


Planted = tuple[Path, dict[tuple[Any, ...], list[int]]]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    return planted_file(tmp_path_factory.mktemp("planted") / "planted.jsonl")


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, planted: Planted) -> Iterator[VectorStore]:
    """One store holding the planted and the clean file, indexed once for the module's tests."""
    folder = tmp_path_factory.mktemp("reports")
    points = QdrantPointStore("dataset_examples", path=folder / "qdrant")
    store = VectorStore(points, embedder, near_duplicate_threshold=TUNED_THRESHOLD)
    store.index_file("file-planted", OWNER, ORGANIZATION, planted[0])
    store.index_file("file-clean", OWNER, ORGANIZATION, clean_file(folder / "clean.jsonl"))
    yield store
    points.close()


def test_report_finds_every_exact_duplicate_and_most_paraphrases(indexed: VectorStore, planted: Planted) -> None:
    lines = planted[1]
    report = indexed.duplicate_report("file-planted", OWNER, ORGANIZATION)

    expected_exact = sorted(lines[("distinct", index)] for index in EXACT_SOURCES)
    assert report.exact == expected_exact
    assert report.counts["exact_duplicate_lines"] == sum(EXACT_SOURCES.values())

    group_of = {line: tuple(group) for group in report.near for line in group}
    pairs = [lines[("pair", pair)] for pair in range(len(PARAPHRASES))]
    found = [pair for pair in pairs if pair[0] in group_of and group_of[pair[0]] == group_of.get(pair[1])]
    assert len(found) >= 0.9 * len(pairs), f"found {len(found)} of {len(pairs)} paraphrase pairs"

    # Exact-only groups are not repeated as near groups, and near groups that hold no
    # planted pair are false alarms.
    assert not any(group in expected_exact for group in report.near)
    false_groups = [group for group in report.near if not any(set(pair) <= set(group) for pair in pairs)]
    assert len(false_groups) <= 0.05 * report.counts["lines"], false_groups


def test_clean_file_has_no_exact_and_few_near_groups(indexed: VectorStore) -> None:
    report = indexed.duplicate_report("file-clean", OWNER, ORGANIZATION)
    assert report.counts["lines"] == len(DISTINCT) + len(PARAPHRASES)
    assert report.exact == []
    assert report.counts["near_groups"] <= 0.05 * report.counts["lines"], report.near


def test_a_threshold_of_one_leaves_only_exact_duplicates(indexed: VectorStore) -> None:
    report = indexed.duplicate_report("file-planted", OWNER, ORGANIZATION, threshold=1.0001)
    assert report.near == []
    assert len(report.exact) == len(EXACT_SOURCES)


def test_overlap_pairs_validation_lines_with_their_training_originals(store: VectorStore, tmp_path: Path) -> None:
    training = [chat_line(example) for example in DISTINCT[:70]]
    training += [chat_line(pair[0]) for pair in PARAPHRASES[:10]]
    copied = [5, 12, 33, 47, 60, 69]  # training lines 6, 13, ... hold these examples
    validation = [chat_line(DISTINCT[index]) for index in copied]
    validation += [chat_line(pair[1]) for pair in PARAPHRASES[:10]]
    validation += [chat_line(example) for example in DISTINCT[88:]]  # unseen in training
    store.index_file("file-train", OWNER, ORGANIZATION, write_jsonl(tmp_path / "train.jsonl", training))
    store.index_file("file-valid", OWNER, ORGANIZATION, write_jsonl(tmp_path / "valid.jsonl", validation))

    report = store.overlap("file-train", "file-valid", OWNER, ORGANIZATION, threshold=TUNED_THRESHOLD)

    expected = {position + 1: index + 1 for position, index in enumerate(copied)}
    expected |= {len(copied) + pair + 1: 70 + pair + 1 for pair in range(10)}
    found = {pair.validation_line: pair.training_line for pair in report.pairs}
    assert found.items() <= expected.items()
    assert report.count == len(found) >= len(expected) - 1
    assert report.validation_lines == len(validation)
    assert all(pair.score > 0.999 for pair in report.pairs if pair.validation_line <= len(copied))
    assert [pair.score for pair in report.pairs] == sorted((pair.score for pair in report.pairs), reverse=True)
