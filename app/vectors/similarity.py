"""Pairs of unit vectors above a cosine threshold, and grouping them.

Exact search in blocks of rows: a file's vectors fit in memory (100k lines x 384
floats = 150 MB), a block of similarities is `block x n`, and exact search means
the report never misses a pair the way an approximate index can.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

BLOCK_ROWS = 1024


def pairs_within(vectors: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Every (i, j, score) with i < j and dot(v_i, v_j) >= threshold."""
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, len(vectors), BLOCK_ROWS):
        # Only columns from `start` on: earlier rows already met this block.
        scores = vectors[start : start + BLOCK_ROWS] @ vectors[start:].T
        rows, columns = np.nonzero(scores >= threshold)
        for row, column in zip(rows.tolist(), columns.tolist(), strict=True):
            if row < column:
                pairs.append((start + row, start + column, float(scores[row, column])))
    return pairs


def best_matches(queries: np.ndarray, corpus: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """For each query row, its most similar corpus row when that score reaches the threshold."""
    matches: list[tuple[int, int, float]] = []
    if len(corpus) == 0:
        return matches
    for start in range(0, len(queries), BLOCK_ROWS):
        scores = queries[start : start + BLOCK_ROWS] @ corpus.T
        best = scores.argmax(axis=1)
        best_scores = scores[np.arange(len(best)), best]
        for row in np.nonzero(best_scores >= threshold)[0].tolist():
            matches.append((start + row, int(best[row]), float(best_scores[row])))
    return matches


def connected_groups(size: int, edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Groups of two or more indices joined by edges (union-find), each sorted, by first member."""
    parent = list(range(size))

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for left, right in edges:
        left_root, right_root = root(left), root(right)
        if left_root != right_root:
            parent[max(left_root, right_root)] = min(left_root, right_root)
    members: dict[int, list[int]] = {}
    for node in range(size):
        members.setdefault(root(node), []).append(node)
    return sorted((group for group in members.values() if len(group) > 1), key=lambda group: group[0])
