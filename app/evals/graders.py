"""The graders of an eval's `testing_criteria`: each grades one item (and its sample) into a result.

The criteria are checked and normalised at creation by app/evals/criteria.py (re-exported here,
so a caller needs this module only). Grading is pure except for the `Judge`, the caller's way
to ask a served model for a model grader's reply. A judge that raises (the model is down)
propagates: the caller decides whether that fails the run. A reason this item cannot be graded
(a template path it lacks, a reply with no score) is a `GraderError`, shown on its result.

Text similarity tokenizes with one regex (lowercased Unicode words, punctuation dropped), so no
NLTK data is needed. Standard metrics keep their known quirks on short texts: ROUGE-n of a text
under n words is 0, and METEOR's fragmentation penalty keeps even identical texts just below 1.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import string
from collections.abc import Awaitable, Callable
from typing import Any

from rapidfuzz import fuzz

from app.evals import formula
from app.evals.criteria import check_criteria, judge_models
from app.evals.templates import TemplateError, render

__all__ = ["GraderError", "Judge", "check_criteria", "grade", "grade_all", "judge_models"]

# (model, chat messages [{"role", "content"}], sampling params {temperature, top_p, seed, max_tokens})
#   -> (reply text, prompt tokens, completion tokens)
Judge = Callable[[str, list[dict[str, str]], dict[str, Any]], Awaitable[tuple[str, int, int]]]
Criterion = dict[str, Any]  # one checked criterion (or a multi grader's sub-grader), as criteria.py returns it
Sample = dict[str, Any] | None  # the model's output for the item; None for runs that only grade given data
Result = dict[str, Any]

NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
WORD = re.compile(r"\w+")
SHOWN_REPLY = 300  # characters of a judge's reply quoted in an error
# Open models' chat templates know "system", not OpenAI's newer "developer".
JUDGE_ROLES = {"developer": "system"}
# The sampling params a Judge takes (reasoning_effort is accepted on the criterion but not sent).
JUDGE_PARAMS = {"temperature": "temperature", "top_p": "top_p", "seed": "seed", "max_completions_tokens": "max_tokens"}


class GraderError(Exception):
    """This item could not be graded by this criterion (the reason is shown on the output item)."""

    def __init__(self, reason: str, *, model: str | None = None, judged: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.model = model  # the judge asked, whose tokens were spent even so
        self.judged = judged or {}  # its reply and usage, kept on the result


async def grade_all(
    criteria: list[Criterion], item: dict[str, Any], sample: Sample, judge: Judge
) -> tuple[str, list[Result]]:
    """Every criterion's result for one item, in the criteria's order, and the item's status.

    The status is "error" when some criterion could not grade the item, else "pass" when every
    result passed, else "fail".
    """
    results: list[Result] = []
    errored = False
    for criterion in criteria:
        try:
            results.append(await grade(criterion, item, sample, judge))
        except (GraderError, TemplateError) as error:
            errored = True
            results.append(_error_result(criterion, error))
    if errored:
        return "error", results
    return ("pass" if all(result["passed"] for result in results) else "fail"), results


async def grade(criterion: Criterion, item: dict[str, Any], sample: Sample, judge: Judge) -> Result:
    """One criterion's EvalRunOutputItemResult for one item; GraderError when it cannot grade it."""
    return await GRADERS[criterion["type"]](criterion, item, sample, judge)


async def _string_check(criterion: Criterion, item: dict[str, Any], sample: Sample, _: Judge) -> Result:
    text = _render(criterion["input"], item, sample)
    reference = _render(criterion["reference"], item, sample)
    match criterion["operation"]:
        case "eq":
            matched = text == reference
        case "ne":
            matched = text != reference
        case "like":
            matched = reference in text
        case _:  # ilike
            matched = reference.casefold() in text.casefold()
    return _result(criterion, 1.0 if matched else 0.0, matched)


async def _text_similarity(criterion: Criterion, item: dict[str, Any], sample: Sample, _: Judge) -> Result:
    text = _render(criterion["input"], item, sample)
    reference = _render(criterion["reference"], item, sample)
    metric = criterion["evaluation_metric"]
    if not text.strip() or not reference.strip():
        score = 0.0
    elif metric == "cosine":
        # Off the event loop: the first call loads the embedding model, and every call runs it on the CPU.
        score = await asyncio.to_thread(cosine_similarity, text, reference)
    else:
        score = similarity(metric, text, reference)
    return _result(criterion, score, score >= criterion["pass_threshold"])


async def _score_model(criterion: Criterion, item: dict[str, Any], sample: Sample, judge: Judge) -> Result:
    judged = await _ask(criterion, item, sample, judge)
    low, high = criterion["range"]
    score = parse_score(judged["output"])
    if score is None or not low <= score <= high:
        found = "holds no score" if score is None else f"scores {score}, outside the range [{low}, {high}]"
        raise GraderError(
            f"the judge's reply {found}: {_quote(judged['output'])}", model=criterion["model"], judged=judged
        )
    return _judged_result(criterion, score, score >= criterion["pass_threshold"], judged)


async def _label_model(criterion: Criterion, item: dict[str, Any], sample: Sample, judge: Judge) -> Result:
    judged = await _ask(criterion, item, sample, judge)
    label = parse_label(judged["output"], criterion["labels"])
    if label is None:
        labels = ", ".join(criterion["labels"])
        reason = f"the judge's reply names none of the labels ({labels}): {_quote(judged['output'])}"
        raise GraderError(reason, model=criterion["model"], judged=judged)
    passed = label in criterion["passing_labels"]
    return _judged_result(criterion, 1.0 if passed else 0.0, passed, {**judged, "label": label})


async def _multi(criterion: Criterion, item: dict[str, Any], sample: Sample, judge: Judge) -> Result:
    results: dict[str, Result] = {}
    for name, grader in criterion["graders"].items():
        try:
            results[name] = await grade(grader, item, sample, judge)
        except GraderError as error:
            raise GraderError(f"grader '{name}': {error}", model=error.model, judged=error.judged) from error
    scores = {name: result["score"] for name, result in results.items()}
    try:
        score = formula.evaluate(criterion["calculate_output"], scores)
    except formula.FormulaError as error:
        raise GraderError(f"calculate_output: {error}") from error
    return _result(criterion, score, score >= criterion["pass_threshold"], {"scores": scores, "results": results})


GRADERS: dict[str, Callable[[Criterion, dict[str, Any], Sample, Judge], Awaitable[Result]]] = {
    "string_check": _string_check,
    "text_similarity": _text_similarity,
    "score_model": _score_model,
    "label_model": _label_model,
    "multi": _multi,
}


def parse_score(reply: str) -> float | None:
    """The score in a judge's reply: a JSON object's number "result", else the first number in the text."""
    start, end = reply.find("{"), reply.rfind("}")
    for candidate in (reply.strip(), reply[start : end + 1] if 0 <= start < end else ""):
        try:
            parsed = json.loads(candidate)
        except ValueError:
            continue
        result = parsed.get("result") if isinstance(parsed, dict) else None
        if isinstance(result, int | float) and not isinstance(result, bool) and math.isfinite(result):
            return float(result)
    found = NUMBER.search(reply)
    return float(found.group(0)) if found else None


def parse_label(reply: str, labels: list[str]) -> str | None:
    """The label a judge's reply gives: all of it (case, spaces and punctuation aside), else the first one named."""
    bare = reply.strip(string.whitespace + string.punctuation).casefold()
    for label in labels:
        if label.casefold() == bare:
            return label
    named = [
        (found.start(), -len(label), label)  # the earliest; at one place the longer ("very good" over "very")
        for label in labels
        if (found := re.search(rf"(?<!\w){re.escape(label)}(?!\w)", reply, re.IGNORECASE))
    ]
    return min(named)[2] if named else None


def similarity(metric: str, text: str, reference: str) -> float:
    """A text_similarity metric other than cosine, in [0, 1]; 0.0 when either text has no words."""
    if metric == "fuzzy_match":
        return fuzz.ratio(text, reference) / 100
    words, reference_words = words_of(text), words_of(reference)
    if not words or not reference_words:
        return 0.0
    # NLTK (rouge-score imports it too) is imported in the branches: it takes seconds to import, which
    # processes that only check criteria (the API) should not pay.
    if metric == "bleu":
        from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu  # slow: see above

        # auto_reweigh: a text under 4 words is scored on the n-grams it can have, so "yes" matches "yes".
        bleu = sentence_bleu(
            [reference_words], words, smoothing_function=SmoothingFunction().method1, auto_reweigh=True
        )
        return float(bleu)
    if metric == "gleu":
        from nltk.translate.gleu_score import sentence_gleu  # slow: see above

        return float(sentence_gleu([reference_words], words))
    if metric == "meteor":
        from nltk.translate.meteor_score import meteor_score  # slow: see above

        # WordNet's data cannot be downloaded here: with no synonyms METEOR matches exact words and Porter stems.
        return float(meteor_score([reference_words], words, wordnet=_NoSynonyms()))
    from rouge_score.rouge_scorer import RougeScorer  # slow: see above; rouge_1 ... rouge_5, rouge_l

    rouge_type = "rougeL" if metric == "rouge_l" else metric.replace("_", "")
    scorer = RougeScorer([rouge_type], tokenizer=_Words())
    return float(scorer.score(reference, text)[rouge_type].fmeasure)


def cosine_similarity(text: str, reference: str) -> float:
    """The cosine of the two texts' sentence embeddings (the platform's embedder, one per process)."""
    # Imported here: the embedder's sentence-transformers and torch come with the train extra, which
    # processes that only check criteria need not have, and take seconds to load.
    from app.vectors.embedder import get_embedder

    vectors = get_embedder().embed([text, reference])  # unit vectors: the cosine is their dot product
    return max(-1.0, min(1.0, float(vectors[0] @ vectors[1])))


def words_of(text: str) -> list[str]:
    return WORD.findall(text.lower())


class _Words:
    """rouge-score's tokenizer interface over `words_of`, so every metric sees the same words."""

    def tokenize(self, text: str) -> list[str]:
        return words_of(text)


class _NoSynonyms:
    """The one WordNet method METEOR calls, finding no synonyms."""

    def synsets(self, word: str) -> list[Any]:
        return []


async def _ask(criterion: Criterion, item: dict[str, Any], sample: Sample, judge: Judge) -> dict[str, Any]:
    """The judge's reply to the criterion's rendered messages, with its usage."""
    messages = [
        {
            "role": JUDGE_ROLES.get(message["role"], message["role"]),
            "content": _message_text(message["content"], item, sample),
        }
        for message in criterion["input"]
    ]
    sampling = criterion.get("sampling_params") or {}
    params = {JUDGE_PARAMS[key]: value for key, value in sampling.items() if key in JUDGE_PARAMS}
    reply, prompt_tokens, completion_tokens = await judge(criterion["model"], messages, params)
    return {"output": reply, "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}}


def _message_text(content: Any, item: dict[str, Any], sample: Sample) -> str:
    # Text parts are joined by newlines, as vLLM joins the text parts of one message.
    parts = content if isinstance(content, list) else [content]
    return "\n".join(_render(part if isinstance(part, str) else part["text"], item, sample) for part in parts)


def _render(template: str, item: dict[str, Any], sample: Sample) -> str:
    try:
        return render(template, item, sample)
    except TemplateError as error:
        raise GraderError(str(error)) from error


def _result(criterion: Criterion, score: float, passed: bool, sample: dict[str, Any] | None = None) -> Result:
    return {
        "name": criterion["name"],
        "type": criterion["type"],
        "score": float(score),
        "passed": passed,
        "sample": sample,
    }


def _judged_result(criterion: Criterion, score: float, passed: bool, judged: dict[str, Any]) -> Result:
    """A model grader's result: the judge's reply and usage in `sample`, and the judge and usage on top,
    where the run's per-model usage is summed."""
    return {**_result(criterion, score, passed, judged), "model": criterion["model"], "usage": judged["usage"]}


def _error_result(criterion: Criterion, error: Exception) -> Result:
    result = _result(criterion, 0.0, False, {"error": str(error)})
    if isinstance(error, GraderError) and error.model is not None:
        result.update(model=error.model, usage=error.judged.get("usage"))
        result["sample"].update(error.judged)
    return result


def _quote(reply: str) -> str:
    return json.dumps(reply if len(reply) <= SHOWN_REPLY else reply[:SHOWN_REPLY] + "...", ensure_ascii=False)
