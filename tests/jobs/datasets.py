"""Small, learnable chat and preference datasets for end-to-end jobs on the tiny model."""

from __future__ import annotations

import json

COLORS = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"]
ANIMALS = ["cat", "dog", "bird", "fish", "horse", "mouse", "sheep", "goat"]


def chat_lines(count: int, offset: int = 0) -> list[dict[str, object]]:
    lines = []
    for index in range(offset, offset + count):
        color, animal = COLORS[index % len(COLORS)], ANIMALS[(index // len(COLORS)) % len(ANIMALS)]
        lines.append(
            {
                "messages": [
                    {"role": "system", "content": "You answer briefly."},
                    {"role": "user", "content": f"What color is the {animal} number {index}?"},
                    {"role": "assistant", "content": f"The {animal} is {color}."},
                ]
            }
        )
    return lines


def preference_lines(count: int) -> list[dict[str, object]]:
    lines = []
    for index in range(count):
        color, animal = COLORS[index % len(COLORS)], ANIMALS[index % len(ANIMALS)]
        lines.append(
            {
                "input": {"messages": [{"role": "user", "content": f"Describe the {animal}."}]},
                "preferred_output": [{"role": "assistant", "content": f"The {animal} is {color}."}],
                "non_preferred_output": [{"role": "assistant", "content": "I do not know."}],
            }
        )
    return lines


def jsonl(lines: list[dict[str, object]]) -> bytes:
    return ("\n".join(json.dumps(line) for line in lines) + "\n").encode()
