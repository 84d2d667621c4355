"""A tiny Llama-architecture model with a locally trained tokenizer, for tests and the demo.

Random weights (~250K parameters; one attention head of dimension 64: the
CPU build of vLLM, the embedded serving engine, refuses 16), a byte-level BPE tokenizer trained
here on English text generated in code, and a Llama-3-style chat template whose assistant turns are
wrapped in `{% generation %}` so assistant-only loss works. Saved with `save_pretrained`,
so it loads through the very `from_pretrained` path a real model takes. Nothing is
downloaded: it works with HF_HUB_OFFLINE=1.

    python -m app.training.tiny_model PATH
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

COMPLETE_MARKER = "tiny_model.json"
VOCAB_SIZE = 1024
SPECIAL_TOKENS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|pad|>",
]

# Llama 3 layout. The assistant's text and its end-of-turn token sit inside {% generation %}:
# those are the tokens the model must learn to produce, and the only ones that carry loss.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}"
    "{% if message['content'] %}{{ message['content'] | trim }}{% endif %}"
    "{% if message.get('tool_calls') %}{{ message['tool_calls'] | tojson }}{% endif %}"
    "<|eot_id|>"
    "{% endgeneration %}"
    "{% else %}"
    "{{ message['content'] | trim }}<|eot_id|>"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

_SUBJECTS = ["the model", "a student", "my friend", "the teacher", "our team", "the robot", "a farmer", "the city"]
_VERBS = ["reads", "writes", "builds", "finds", "answers", "explains", "paints", "learns", "plants", "counts"]
_OBJECTS = ["a book", "the question", "three apples", "a small house", "the answer", "clear water", "a long road"]
_ENDINGS = ["today.", "every morning.", "with care.", "before lunch.", "in the park.", "for everyone.", "again."]
_WORDS = [
    "what",
    "how",
    "why",
    "when",
    "where",
    "who",
    "which",
    "please",
    "thanks",
    "hello",
    "goodbye",
    "yes",
    "no",
    "maybe",
    "good",
    "bad",
    "better",
    "best",
    "quick",
    "slow",
    "early",
    "late",
    "number",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "hundred",
    "thousand",
    "user",
    "assistant",
    "system",
    "tool",
    "answer",
    "question",
    "weather",
    "time",
    "name",
    "help",
    "explain",
    "summary",
    "today",
    "tomorrow",
    "yesterday",
    "morning",
    "evening",
    "night",
    "water",
    "fire",
    "earth",
    "wind",
    "light",
    "dark",
    "green",
    "blue",
    "red",
    "yellow",
    "white",
    "black",
    "river",
    "mountain",
    "forest",
    "ocean",
    "island",
    "bridge",
    "station",
    "market",
    "garden",
    "kitchen",
    "window",
    "table",
    "chair",
    "paper",
    "pencil",
    "letter",
    "story",
    "poem",
    "song",
    "music",
    "picture",
    "travel",
    "journey",
    "holiday",
    "family",
    "friend",
    "neighbour",
    "doctor",
    "engineer",
    "artist",
    "writer",
    "reader",
    "student",
    "teacher",
    "computer",
    "program",
    "function",
    "variable",
    "library",
    "server",
    "request",
    "response",
    "error",
    "message",
    "result",
    "value",
    "list",
    "simple",
    "complex",
    "careful",
    "honest",
    "gentle",
    "brave",
    "curious",
    "patient",
    "polite",
    "helpful",
    "useful",
    "important",
    "different",
    "because",
    "although",
    "however",
    "therefore",
    "instead",
    "perhaps",
    "always",
    "never",
    "often",
    "sometimes",
    "usually",
    "almost",
]


def english_corpus(n_lines: int = 4000, seed: int = 0) -> list[str]:
    """Simple English sentences and question/answer lines, enough to learn common merges."""
    rng = random.Random(seed)
    grammar = list(itertools.product(_SUBJECTS, _VERBS, _OBJECTS, _ENDINGS))
    lines = []
    for index in range(n_lines):
        subject, verb, obj, ending = rng.choice(grammar)
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 8)))
        lines.append(f"{subject.capitalize()} {verb} {obj} {ending} {words.capitalize()}? Number {index % 97}.")
    return lines


def build_tiny_model(path: Path) -> Path:
    """Build the tiny model and tokenizer at `path` unless a complete one is already there."""
    path = Path(path)
    if (path / COMPLETE_MARKER).is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename into place, so a concurrent reader never sees half a model.
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        _save_tokenizer(staging)
        _save_model(staging)
        (staging / COMPLETE_MARKER).write_text(json.dumps({"vocab_size": VOCAB_SIZE}), encoding="utf-8")
        if path.exists():
            shutil.rmtree(path)
        staging.chmod(0o755)
        os.replace(staging, path)
    except OSError:
        if (path / COMPLETE_MARKER).is_file():  # another process won the race
            shutil.rmtree(staging, ignore_errors=True)
            return path
        raise
    finally:
        if staging.exists() and staging != path:
            shutil.rmtree(staging, ignore_errors=True)
    return path


def _save_tokenizer(directory: Path) -> None:
    # Loaded only to build a model: finding a built one (tests, make run) needs neither.
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    # Byte level: any Unicode text tokenizes without an unknown token.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(english_corpus(), trainer=trainer)
    begin_of_text, _, _, _, end_of_turn, padding = SPECIAL_TOKENS
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=begin_of_text,
        eos_token=end_of_turn,
        pad_token=padding,
        model_max_length=2048,
    )
    wrapped.chat_template = CHAT_TEMPLATE
    wrapped.save_pretrained(directory)


def _save_model(directory: Path) -> None:
    # As in _save_tokenizer.
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(directory)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=2,
        # One head of 64: vLLM's CPU attention (the embedded serving engine) refuses head_dim 16.
        num_attention_heads=1,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=32,
    )
    model.save_pretrained(directory)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m app.training.tiny_model PATH", file=sys.stderr)
        return 2
    print(build_tiny_model(Path(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
