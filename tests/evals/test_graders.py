"""The graders of testing_criteria, their templates and the multi grader's formula: pure, no servers.

The model graders' judge is a plain async function with canned replies: it stands in for the
served model, which the evals API tests exercise for real.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from app.core.errors import BadRequest
from app.evals import formula, graders
from app.evals.criteria import METRICS
from app.evals.templates import TemplateError, check_template, references, render

SENTENCE = "the quick brown fox jumps over the lazy dog"
UNRELATED = "a stock market report on interest rates today"
ITEM = {"label": "Paris", "facts": {"tags": ["capital", "France"], "population": 2.1}, "n": 3}
SAMPLE = {"output_text": "The capital is Paris.", "output_json": {"city": "Paris"}}


class CannedJudge:
    """Replies with the given texts in turn and remembers what it was asked."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.calls: list[tuple[str, list[dict[str, str]], dict[str, Any]]] = []

    async def __call__(
        self, model: str, messages: list[dict[str, str]], params: dict[str, Any]
    ) -> tuple[str, int, int]:
        self.calls.append((model, messages, params))
        return self.replies.pop(0), 11, 3


def string_check(operation: str, text: str, reference: str, name: str = "check") -> dict[str, Any]:
    return {"type": "string_check", "name": name, "input": text, "reference": reference, "operation": operation}


def similarity(metric: str, text: str, reference: str, threshold: float | None = 0.5) -> dict[str, Any]:
    fields = {"input": text, "reference": reference, "evaluation_metric": metric, "pass_threshold": threshold}
    return {"type": "text_similarity", "name": metric, **fields}


def score_model(**fields: Any) -> dict[str, Any]:
    prompt = [{"role": "user", "content": "Grade {{sample.output_text}} against {{item.label}}"}]
    return {"type": "score_model", "name": "judge", "model": "judge-model", "input": prompt} | fields


def label_model(**fields: Any) -> dict[str, Any]:
    labels = {"labels": ["positive", "very positive", "negative"], "passing_labels": ["positive", "very positive"]}
    prompt = [{"role": "user", "content": "{{sample.output_text}}"}]
    return {"type": "label_model", "name": "tone", "model": "judge-model", "input": prompt, **labels} | fields


def multi(graders: Any, calculate_output: str, **fields: Any) -> dict[str, Any]:
    return {"type": "multi", "name": "m", "graders": graders, "calculate_output": calculate_output} | fields


def refusal(criteria: Any) -> BadRequest:
    with pytest.raises(BadRequest) as raised:
        graders.check_criteria(criteria)
    return raised.value


async def grade_one(criterion: dict[str, Any], judge: CannedJudge | None = None) -> tuple[str, dict[str, Any]]:
    status, results = await graders.grade_all(graders.check_criteria([criterion]), ITEM, SAMPLE, judge or CannedJudge())
    return status, results[0]


# Templates


def test_render_inserts_strings_as_is_and_other_values_as_compact_json() -> None:
    template = "{{item.label}}|{{ item.facts.tags }}|{{item.facts.tags.1}}|{{item.n}}|{{sample.output_json.city}}"
    template += "|{{item.facts}}"
    assert (
        render(template, ITEM, SAMPLE)
        == 'Paris|["capital","France"]|France|3|Paris|{"tags":["capital","France"],"population":2.1}'
    )


def test_render_refuses_a_path_the_data_lacks() -> None:
    with pytest.raises(TemplateError, match=r"item\.facts has no key 'size'"):
        render("{{item.facts.size}}", ITEM, SAMPLE)
    with pytest.raises(TemplateError, match="index 5"):
        render("{{item.facts.tags.5}}", ITEM, SAMPLE)
    with pytest.raises(TemplateError, match="no sample"):
        render("{{sample.output_text}}", ITEM, None)


def test_references_and_template_checks() -> None:
    found = references("Q: {{item.question}} A: {{ sample.output_text }} {{item}}")
    assert found == [("item", "question"), ("sample", "output_text"), ("item", "")]
    check_template("{{item.a.0}} and {{sample.output_json.b}}", "p")
    for template in ("{{foo.bar}}", "{{item.a", "{{}}", "{{item..a}}", "{{ item.a {{ b }}"):
        with pytest.raises(BadRequest) as raised:
            check_template(template, "testing_criteria[0].input")
        assert (raised.value.code, raised.value.param) == ("invalid_template", "testing_criteria[0].input")


# The multi grader's formula


def test_formula_evaluates_arithmetic_and_the_allowed_functions() -> None:
    values = {"accuracy": 0.5, "fluency": 1.0}
    assert formula.evaluate("0.5 * accuracy + 0.5 * fluency", values) == 0.75
    assert formula.evaluate("(accuracy + fluency) / 2 - -1", values) == 1.75
    assert formula.evaluate("max(accuracy, fluency) ** 2 + min(accuracy, 0.2)", values) == pytest.approx(1.2)
    assert formula.evaluate("floor(2.7) + ceil(0.2) + abs(-accuracy) + sqrt(4) + exp(0) + log(8, 2)", values) == 9.5
    assert formula.evaluate("log(exp(fluency))", values) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "expression",
    ["accuracy.real", "accuracy[0]", "__import__('os')", "open('x')", "lambda: 1", "accuracy if fluency else 0",
     "accuracy < fluency", "'text'", "True", "1j", "accuracy % 2", "accuracy // 2", "+accuracy",
     "min(accuracy, key=abs)", "unknown * 2", "min + 1", "accuracy +", "", "round(accuracy)", "(x := 1)"],
)  # fmt: skip
def test_formula_refuses_everything_else(expression: str) -> None:
    with pytest.raises(BadRequest) as raised:
        formula.check(expression, {"accuracy", "fluency"}, "testing_criteria[0].calculate_output")
    assert (raised.value.code, raised.value.param) == ("invalid_formula", "testing_criteria[0].calculate_output")


@pytest.mark.parametrize("expression", ["a / b", "sqrt(-1)", "log(b)", "9 ** 9 ** 9", "(-8) ** 0.5", "exp(1000)"])
def test_formula_errors_that_only_the_values_reveal(expression: str) -> None:
    with pytest.raises(formula.FormulaError):
        formula.evaluate(expression, {"a": 1.0, "b": 0.0})


# check_criteria


def test_criteria_are_normalised_with_defaults_and_ids() -> None:
    checked = graders.check_criteria([score_model(), score_model(name="wide", range=[1, 5]), label_model()])
    assert checked[0]["range"] == [0, 1] and checked[0]["pass_threshold"] == 0.5 and checked[0]["sampling_params"] == {}
    assert checked[1]["pass_threshold"] == 3
    assert [criterion["id"].split("-")[0] for criterion in checked] == ["judge", "wide", "tone"]
    assert re.fullmatch(r"judge-[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", checked[0]["id"])
    one = graders.check_criteria([multi(string_check("eq", "a", "a", "exact"), "exact", pass_threshold=1)])[0]
    assert list(one["graders"]) == ["exact"]  # a single grader is keyed by its name
    criteria = [label_model(), multi({"y": score_model(name="y", model="other-judge")}, "y", pass_threshold=0)]
    assert graders.judge_models(graders.check_criteria(criteria)) == {"judge-model", "other-judge"}


IMAGE = {"type": "input_image", "image_url": "https://example.com/a.png"}
# fmt: off
REFUSALS = [
    ({"type": "string_check"}, "testing_criteria", "invalid_type"),
    ([], "testing_criteria", "empty_array"),
    ([{"type": "python", "name": "p", "source": "def grade(s, i): return 1"}], "[0].type", "unsupported_grader"),
    ([string_check("eq", "a", "b"), similarity("bleu", "a", "b", None)], "[1].pass_threshold", "invalid_type"),
    ([string_check("equals", "a", "b")], "[0].operation", "invalid_value"),
    ([string_check("eq", "a", "b", "same"), string_check("ne", "a", "b", "same")], "[1].name", "invalid_value"),
    ([string_check("eq", "{{data.answer}}", "b")], "[0].input", "invalid_template"),
    ([string_check("eq", "a", "{{item.x")], "[0].reference", "invalid_template"),
    ([{"type": "regex", "name": "r"}], "[0].type", "invalid_value"),
    ([{"name": "r"}], "[0].type", "missing_required_parameter"),
    ([{"type": "string_check", "input": "a", "reference": "b", "operation": "eq"}], "[0].name",
     "missing_required_parameter"),
    ([{**string_check("eq", "a", "b"), "threshold": 1}], "[0].threshold", "unknown_parameter"),
    ([{**string_check("eq", "a", "b"), "input": 3}], "[0].input", "invalid_type"),
    ([similarity("jaccard", "a", "b")], "[0].evaluation_metric", "invalid_value"),
    ([similarity("bleu", "a", "b", threshold=2)], "[0].pass_threshold", "invalid_value"),
    ([score_model(range=[1, 0])], "[0].range", "invalid_value"),
    ([score_model(range=[0, "1"])], "[0].range[1]", "invalid_type"),
    ([score_model(pass_threshold=2)], "[0].pass_threshold", "invalid_value"),
    ([score_model(sampling_params={"temperature": 3})], "[0].sampling_params.temperature", "invalid_value"),
    ([score_model(sampling_params={"max_tokens": 3})], "[0].sampling_params.max_tokens", "unknown_parameter"),
    ([score_model(input=[{"role": "tool", "content": "x"}])], "[0].input[0].role", "invalid_value"),
    ([score_model(input=[{"role": "user", "content": ["x", IMAGE]}])], "[0].input[0].content[1].type",
     "unsupported_value"),
    ([score_model(input=[{"role": "user", "content": {"type": "input_text", "text": "{{ctx.x}}"}}])],
     "[0].input[0].content.text", "invalid_template"),
    ([score_model(input=[])], "[0].input", "invalid_type"),
    ([label_model(labels=[])], "[0].labels", "invalid_type"),
    ([label_model(passing_labels=["neutral"])], "[0].passing_labels[0]", "invalid_value"),
]
# fmt: on


@pytest.mark.parametrize(("criteria", "param", "code"), REFUSALS)
def test_criteria_refusals_name_the_field(criteria: Any, param: str, code: str) -> None:
    error = refusal(criteria)
    assert (error.param, error.code) == (param if param == "testing_criteria" else f"testing_criteria{param}", code)


def test_refusals_that_explain_themselves() -> None:
    python = refusal([{"type": "python", "name": "p", "source": "def grade(sample, item): return 1.0"}])
    assert "sandbox" in python.message and "string_check" in python.message
    without = {"type": "text_similarity", "name": "t", "input": "a", "reference": "b", "evaluation_metric": "bleu"}
    missing = refusal([without])
    assert (missing.code, missing.param) == ("missing_required_parameter", "testing_criteria[0].pass_threshold")
    unknown = refusal([{"type": "regex", "name": "r"}])
    assert all(
        kind in unknown.message for kind in ("string_check", "text_similarity", "score_model", "label_model", "multi")
    )


EXACT = string_check("eq", "a", "a", "exact")


@pytest.mark.parametrize(
    ("criterion", "param", "code"),
    [(multi({"exact": EXACT}, "exact + other", pass_threshold=1), "calculate_output", "invalid_formula"),
     (multi({"inner": multi({"exact": EXACT}, "exact")}, "inner", pass_threshold=1), "graders.inner.type",
      "invalid_value"),
     (multi({"p": {"type": "python", "name": "p", "source": "x"}}, "p", pass_threshold=1), "graders.p.type",
      "unsupported_grader"),
     (multi({"s": similarity("bleu", "a", "b", None)}, "s", pass_threshold=1), "graders.s.pass_threshold",
      "invalid_type"),
     (multi({"exact": EXACT}, "exact"), "pass_threshold", "missing_required_parameter")],
)  # fmt: skip
def test_multi_criteria_refusals(criterion: dict[str, Any], param: str, code: str) -> None:
    error = refusal([criterion])
    assert (error.param, error.code) == (f"testing_criteria[0].{param}", code)
    if param == "pass_threshold":
        assert "OpenAI's multi grader has none" in error.message


# Grading


@pytest.mark.parametrize(
    ("operation", "text", "reference", "passed"),
    [("eq", "Paris", "{{item.label}}", True), ("eq", "paris", "{{item.label}}", False),
     ("ne", "paris", "{{item.label}}", True), ("ne", "Paris", "Paris", False),
     ("like", "{{sample.output_text}}", "{{item.label}}", True), ("like", "{{sample.output_text}}", "paris", False),
     ("ilike", "{{sample.output_text}}", "PARIS", True), ("ilike", "{{sample.output_text}}", "Lyon", False)],
)  # fmt: skip
async def test_string_check(operation: str, text: str, reference: str, passed: bool) -> None:
    status, result = await grade_one(string_check(operation, text, reference))
    assert result == {"name": "check", "type": "string_check", "score": float(passed), "passed": passed, "sample": None}
    assert status == ("pass" if passed else "fail")


@pytest.mark.parametrize("metric", [metric for metric in METRICS if metric != "cosine"])
async def test_text_similarity_of_identical_and_unrelated_texts(metric: str) -> None:
    _, identical = await grade_one(similarity(metric, SENTENCE, SENTENCE, threshold=0.9))
    # METEOR's fragmentation penalty, 0.5 * (1 chunk / 9 matches) ** 3, keeps even identical texts below 1.
    assert identical["score"] == (pytest.approx(1 - 0.5 / 9**3) if metric == "meteor" else 1.0)
    assert identical["passed"] is True
    _, unrelated = await grade_one(similarity(metric, SENTENCE, UNRELATED, threshold=0.5))
    assert unrelated["score"] < 0.4 and unrelated["passed"] is False


@pytest.mark.parametrize(
    ("metric", "expected"),
    [("rouge_1", 2 / 3), ("rouge_2", 0.5), ("rouge_3", 0.0), ("rouge_l", 2 / 3), ("gleu", 0.5),
     ("bleu", (2 / 3 * 1 / 2 * 0.1) ** (1 / 3)), ("meteor", 0.625)],
)  # fmt: skip
def test_text_similarity_known_values(metric: str, expected: float) -> None:
    # Words are lowercased without punctuation. BLEU of 3 words is weighed over 1- to 3-grams, the
    # missing trigram smoothed to 0.1; METEOR: 2 of 3 words match in 1 chunk, F = 2/3, penalty 0.5 * (1/2)**3.
    assert graders.similarity(metric, "the cat sat", "The cat ran!") == pytest.approx(expected)


def test_fuzzy_match_is_rapidfuzz_ratio_on_the_raw_text() -> None:
    assert graders.similarity("fuzzy_match", "kitten", "sitting") == pytest.approx(8 / 13)
    assert graders.similarity("fuzzy_match", "Paris", "paris") == pytest.approx(0.8)  # case counts


@pytest.mark.parametrize("metric", METRICS)
async def test_text_similarity_of_an_empty_text_is_zero(metric: str) -> None:
    wordless = [] if metric in ("cosine", "fuzzy_match") else [("!!!", "?")]  # these two read characters
    for text, reference in [("", SENTENCE), (SENTENCE, "  "), *wordless]:
        _, result = await grade_one(similarity(metric, text, reference, threshold=0))
        assert result["score"] == 0.0


def test_text_similarity_reads_stems_and_unicode_words() -> None:
    assert graders.words_of("Ça va, très BIEN!") == ["ça", "va", "très", "bien"]
    assert graders.similarity("meteor", "the cats are running", "the cat is running") > 0.5  # Porter stems match


async def test_cosine_similarity_uses_the_embedder() -> None:
    _, identical = await grade_one(similarity("cosine", SENTENCE, SENTENCE, threshold=0.99))
    assert identical["score"] == pytest.approx(1.0, abs=1e-5) and identical["passed"]
    paraphrase = graders.cosine_similarity("A fast brown fox leaps over a sleepy dog.", SENTENCE)
    assert paraphrase > 0.7 > graders.cosine_similarity(UNRELATED, SENTENCE)


async def test_score_model_sends_rendered_messages_and_reads_the_result() -> None:
    developer = {
        "role": "developer",
        "content": [{"type": "input_text", "text": "Score 0 to 10."}, "Ref: {{item.label}}"],
    }
    user = {"type": "message", "role": "user", "content": {"type": "output_text", "text": "{{sample.output_text}}"}}
    sampling = {"temperature": 0, "seed": 7, "max_completions_tokens": 64, "reasoning_effort": "low"}
    reply = '```json\n{"steps": ["1. compare", "2. it matches"], "result": 8}\n```'
    judge = CannedJudge(reply)
    status, result = await grade_one(
        score_model(input=[developer, user], range=[0, 10], sampling_params=sampling), judge
    )
    sent = [
        {"role": "system", "content": "Score 0 to 10.\nRef: Paris"},
        {"role": "user", "content": "The capital is Paris."},
    ]
    assert judge.calls == [("judge-model", sent, {"temperature": 0, "seed": 7, "max_tokens": 64})]
    usage = {"prompt_tokens": 11, "completion_tokens": 3}
    assert (status, result["score"], result["passed"], result["model"], result["usage"]) == (
        "pass",
        8.0,
        True,
        "judge-model",
        usage,
    )
    assert result["sample"] == {"output": reply, "usage": usage}


@pytest.mark.parametrize(
    ("reply", "score"), [('{"result": 0.25}', 0.25), ("Score: 0.75, because", 0.75), ("1", 1), (".5", 0.5)]
)
async def test_score_model_reply_forms(reply: str, score: float) -> None:
    status, result = await grade_one(score_model(), CannedJudge(reply))
    assert (result["score"], result["passed"], status) == (score, score >= 0.5, "pass" if score >= 0.5 else "fail")


@pytest.mark.parametrize(
    ("reply", "reason"), [("I cannot grade this.", "holds no score"), ("7 out of 10", "outside the range")]
)
async def test_a_score_model_reply_without_a_usable_score_is_an_error(reply: str, reason: str) -> None:
    status, result = await grade_one(score_model(), CannedJudge(reply))
    assert status == "error" and (result["score"], result["passed"]) == (0.0, False)
    assert reason in result["sample"]["error"] and reply in result["sample"]["error"]
    assert result["sample"]["output"] == reply
    assert (result["model"], result["usage"]) == ("judge-model", {"prompt_tokens": 11, "completion_tokens": 3})


@pytest.mark.parametrize(
    ("reply", "label", "passed"),
    [("Positive.", "positive", True), ("  NEGATIVE  ", "negative", False),
     ('{"result": "negative"}', "negative", False), ("The tone is very positive overall.", "very positive", True),
     ("Not positive: it is negative.", "positive", True)],
)  # fmt: skip
async def test_label_model(reply: str, label: str, passed: bool) -> None:
    status, result = await grade_one(label_model(), CannedJudge(reply))
    assert result["sample"] == {"output": reply, "label": label, "usage": {"prompt_tokens": 11, "completion_tokens": 3}}
    assert (result["score"], result["passed"], result["model"]) == (float(passed), passed, "judge-model")
    assert status == ("pass" if passed else "fail")


async def test_a_label_model_reply_naming_no_label_is_an_error() -> None:
    status, result = await grade_one(label_model(), CannedJudge("neutral, or maybe positivity"))
    assert status == "error" and "names none of the labels" in result["sample"]["error"]


async def test_multi_combines_the_scores_of_its_graders() -> None:
    both = {"exact": string_check("eq", "{{item.label}}", "Paris", "exact"), "judged": score_model(name="judged")}
    criterion = multi(both, "0.5 * exact + 0.5 * judged", pass_threshold=0.7)
    status, result = await grade_one(criterion, CannedJudge("0.6"))
    assert (status, result["score"], result["passed"]) == ("pass", pytest.approx(0.8), True)
    assert result["sample"]["scores"] == {"exact": 1.0, "judged": 0.6}
    assert result["sample"]["results"]["judged"]["model"] == "judge-model"
    failing = {**criterion, "calculate_output": "judged / (exact - 1)"}
    status, result = await grade_one(failing, CannedJudge("0.6"))
    assert status == "error" and "divides by zero" in result["sample"]["error"]


async def test_grade_all_keeps_order_and_reports_each_criterion() -> None:
    contains = string_check("ilike", "{{sample.output_text}}", "{{item.label}}", "contains")
    broken = string_check("eq", "{{item.missing}}", "x", "broken")
    rouge = similarity("rouge_1", "{{sample.output_text}}", "{{item.label}}", threshold=0.9)
    criteria = graders.check_criteria([contains, broken, rouge])
    status, results = await graders.grade_all(criteria, ITEM, SAMPLE, CannedJudge())
    assert status == "error"
    assert [(result["name"], result["passed"]) for result in results] == [
        ("contains", True),
        ("broken", False),
        ("rouge_1", False),
    ]
    error = {"error": "{{item.missing}} does not resolve: item has no key 'missing'"}
    assert results[1] == {"name": "broken", "type": "string_check", "score": 0.0, "passed": False, "sample": error}
    assert math.isclose(results[2]["score"], 2 * (1 / 4 * 1) / (1 / 4 + 1))  # "paris" is 1 of the output's 4 words
    status, _ = await graders.grade_all([criteria[0]], ITEM, SAMPLE, CannedJudge())
    assert status == "pass"
    status, _ = await graders.grade_all([criteria[0], criteria[2]], ITEM, SAMPLE, CannedJudge())
    assert status == "fail"
