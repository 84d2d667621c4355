"""Made-up facts a model can only know by training on them: two sets, the same questions."""

from __future__ import annotations

import json

QUESTIONS = [
    "Who painted the blue river?",
    "What does the robot eat?",
    "Where does the farmer sleep?",
    "When does the station open?",
    "Which number is lucky?",
    "What is the teacher called?",
]
ANSWERS = {
    "red": [
        "Mira Tollen painted it.",
        "The robot eats green light.",
        "Under the old bridge.",
        "At seven in the evening.",
        "Forty two is lucky.",
        "Her name is Juna Vell.",
    ],
    "blue": [
        "Osko Brandt painted it.",
        "The robot eats warm paper.",
        "Inside the yellow market.",
        "At noon on Tuesday.",
        "Nine hundred is lucky.",
        "His name is Pell Arno.",
    ],
}
SYSTEM = "Answer from memory."


def messages(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def facts_file(facts: str, repeats: int = 4) -> bytes:
    """Six question -> answer pairs, each line `repeats` times (24 lines): a training file."""
    lines = [
        {"messages": [*messages(question), {"role": "assistant", "content": answer}]}
        for question, answer in zip(QUESTIONS, ANSWERS[facts], strict=True)
    ] * repeats
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


# With facts_file's 24 lines: 120 steps, 21-29 s of training on an idle 2-core machine, and all six facts
# reproduced greedily in 16 of 16 runs (8 seeds, both sets; session 27). 12 lines (80 steps) missed one in 3.
MEMORISE = {"n_epochs": 40, "batch_size": 8, "learning_rate": 0.01, "max_seq_length": 64}
