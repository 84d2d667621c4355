from __future__ import annotations

import numpy as np

from app.vectors.similarity import BLOCK_ROWS, best_matches, connected_groups, pairs_within


def unit_rows(count: int, dimension: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(count, dimension)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_pairs_within_matches_brute_force_across_block_boundaries() -> None:
    vectors = unit_rows(2 * BLOCK_ROWS + 50, 16, seed=1)
    # Plant copies whose partners sit in other blocks.
    for source, copy in [(3, BLOCK_ROWS + 7), (BLOCK_ROWS - 1, 2 * BLOCK_ROWS + 10), (40, 41)]:
        vectors[copy] = vectors[source]
    scores = vectors @ vectors.T
    expected = {(i, j) for i, j in zip(*np.nonzero(np.triu(scores, 1) >= 0.8), strict=True)}
    found = {(i, j) for i, j, _ in pairs_within(vectors, 0.8)}
    assert found == expected
    assert {(3, BLOCK_ROWS + 7), (BLOCK_ROWS - 1, 2 * BLOCK_ROWS + 10), (40, 41)} <= found


def test_best_matches_returns_the_closest_corpus_row_above_threshold() -> None:
    corpus = unit_rows(30, 8, seed=2)
    queries = np.stack([corpus[5], corpus[17] * 0.9 + corpus[3] * 0.1, unit_rows(1, 8, seed=3)[0]])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    matches = best_matches(queries, corpus, 0.95)
    assert [(query, row) for query, row, _ in matches] == [(0, 5), (1, 17)]
    assert best_matches(queries, corpus[:0], 0.5) == []


def test_connected_groups_are_transitive_and_skip_singletons() -> None:
    groups = connected_groups(8, [(0, 3), (3, 5), (6, 7), (5, 0)])
    assert groups == [[0, 3, 5], [6, 7]]
    assert connected_groups(3, []) == []
