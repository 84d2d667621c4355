"""The vocabulary of the small datasets that tests and benchmarks train the tiny model on.

Words the tiny model's tokenizer (app/training/tiny_model.py) learned as single tokens, so a
text of N words is about N tokens long.
"""

from __future__ import annotations

import random

WORDS = "the model reads a book today what time number five good answer question river light".split()  # noqa: SIM905


def words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(count))


def sentence(rng: random.Random, low: int, high: int) -> str:
    """Between `low` and `high` words."""
    return words(rng, rng.randint(low, high))
