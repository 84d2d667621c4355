"""`finetune evals` against the running user API and a real evals worker: runs on given samples, no generation."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from app.cli.context import CliState
from app.cli.errors import CliError, ConnectionFailed
from app.cli.eval_requests import LocalRows, Prompting, data_source, eval_body
from app.cli.evals import exit_code_for, wait_for_run
from app.devstack.processes import free_port
from tests.cli.conftest import Cli, chat_examples
from tests.evals.test_evals_api import CRITERIA, QUESTION_SCHEMA, ROWS

SAMPLES = [{"item": {"question": q, "answer": a}, "sample": {"output_text": said}} for q, a, said in ROWS]
FAILED_ANSWERS = ["A", "cold"]  # the ROWS whose given answer is wrong: both criteria fail them


@pytest.fixture
async def evals_cli(serving, evals_worker, make_user, tmp_path: Path) -> Cli:  # type: ignore[no-untyped-def]
    user = await make_user("evals-cli@example.com", organization="evals-cli")
    return Cli(base_url=serving.user_api, api_key=user.key, config=tmp_path / "finetune" / "config.toml")


def _write_json(path: Path, value: Any) -> str:
    path.write_text(json.dumps(value))
    return str(path)


def _table_rows(output: str) -> list[list[str]]:
    """The cells of every body row of the rich tables in `output`."""
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in output.splitlines()
            if line.startswith("│")]  # fmt: skip


def _detail(output: str, key: str) -> str:
    """The value of a `key  value` line of a details view."""
    found = re.search(rf"^{re.escape(key)}\s{{2,}}(\S.*?)\s*$", output, re.MULTILINE)
    assert found, f"no '{key}' line in:\n{output}"
    return found.group(1)


@pytest.mark.timeout(600)
async def test_create_run_wait_and_show_a_samples_run(evals_cli: Cli, write_jsonl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli = evals_cli
    schema = _write_json(tmp_path / "schema.json", QUESTION_SCHEMA)
    criteria = _write_json(tmp_path / "criteria.json", CRITERIA)
    created = cli("evals", "create", "--name", "capitals", "--item-schema", schema, "--criteria", criteria,
                  "--include-sample-schema", "--metadata", "team=geo")  # fmt: skip
    assert created.exit_code == 0, created.output
    eval_id = re.search(r"Created (eval_\w+) \(capitals\)\.", created.stdout).group(1)  # type: ignore[union-attr]
    assert ["exact", "string_check", "{{sample.output_text}} eq {{item.answer}}"] in _table_rows(created.stdout)
    close = ["close", "text_similarity", "fuzzy_match({{ sample.output_text }}, {{item.answer}}) >= 0.7"]
    assert close in _table_rows(created.stdout), created.stdout

    shown = cli.json("evals", "show", eval_id)
    assert shown["runs"] == [] and shown["eval"]["metadata"] == {"team": "geo"}
    assert shown["eval"]["data_source_config"]["schema"]["properties"]["item"] == QUESTION_SCHEMA
    assert "sample" in shown["eval"]["data_source_config"]["schema"]["properties"]
    assert [entry["id"] for entry in cli.json("evals", "list")["data"]] == [eval_id]

    # A samples run, waited for: progress on stderr, then the counts and per-criteria results.
    samples = write_jsonl("samples.jsonl", SAMPLES)
    waited = cli("evals", "run", eval_id, "--samples", str(samples), "--name", "given answers", "--wait")
    assert waited.exit_code == 0, waited.output
    assert "5/5 items" in waited.stderr and "completed" in waited.stderr, waited.stderr
    assert _detail(waited.stdout, "status") == "completed" and _detail(waited.stdout, "model") == "-"
    assert (_detail(waited.stdout, "total"), _detail(waited.stdout, "passed")) == ("5", "3")
    assert (_detail(waited.stdout, "failed"), _detail(waited.stdout, "errored")) == ("2", "0")
    assert _detail(waited.stdout, "pass rate") == "60%"
    assert _detail(waited.stdout, "data source") == "jsonl (5 inline rows)"
    per_criteria = _table_rows(waited.stdout)
    assert ["exact", "string_check", "3", "2", "60%"] in per_criteria, waited.stdout
    assert ["close", "text_similarity", "3", "2", "60%"] in per_criteria
    run_id = _detail(waited.stdout, "id")
    assert run_id.startswith("evalrun_") and f"finetune evals show {eval_id} {run_id} --failed" in waited.stdout

    # Every output item, fetched two a page (three requests through `after`), and only the failed ones.
    every = cli.json("evals", "show", eval_id, run_id, "--page-size", "2")
    assert every["run"]["result_counts"] == {"total": 5, "errored": 0, "failed": 2, "passed": 3}
    items = every["output_items"]
    assert sorted(item["datasource_item_id"] for item in items) == [0, 1, 2, 3, 4]
    failed = cli.json("evals", "show", eval_id, run_id, "--failed", "--page-size", "1")["output_items"]
    assert sorted(item["datasource_item"]["answer"] for item in failed) == FAILED_ANSWERS
    assert {item["id"] for item in failed} == {item["id"] for item in items if item["status"] == "fail"}

    human = cli("evals", "show", eval_id, run_id, "--page-size", "2")
    assert human.exit_code == 0 and "Output items (5)" in human.stdout, human.output
    by_id = {row[1]: row for row in _table_rows(human.stdout) if row[1].startswith("outputitem_")}
    assert set(by_id) == {item["id"] for item in items}
    for item in items:
        given = next(said for _, answer, said in ROWS if answer == item["datasource_item"]["answer"])
        exact = "pass 1" if item["status"] == "pass" else "fail 0"
        assert by_id[item["id"]][:4] == [str(item["datasource_item_id"]), item["id"], item["status"], exact]
        assert by_id[item["id"]][-1] == given
    only_failed = cli("evals", "show", eval_id, run_id, "--failed")
    assert "Failed items (2)" in only_failed.stdout
    assert {row[1] for row in _table_rows(only_failed.stdout) if row[1].startswith("outputitem_")} == {
        item["id"] for item in failed
    }

    # A second run, waited for with --json: one document, the final run object, with the rows as sent.
    second = cli("evals", "run", eval_id, "--samples", str(samples), "--metadata", "round=2", "--wait", "--json")
    assert second.exit_code == 0 and second.stderr == "", second.output
    final = json.loads(second.stdout)
    assert final["object"] == "eval.run" and final["status"] == "completed" and final["metadata"] == {"round": "2"}
    assert final["data_source"] == {"type": "jsonl", "source": {"type": "file_content", "content": SAMPLES}}
    assert final["progress"] == {"total_items": 5, "stored_items": 5}

    # The eval with its runs, oldest first.
    listed = cli("evals", "show", eval_id)
    assert listed.exit_code == 0 and _detail(listed.stdout, "item fields") == "question, answer"  # as sent
    runs = {row[0]: row for row in _table_rows(listed.stdout) if row[0].startswith("evalrun_")}
    assert runs[run_id][1:6] == ["given answers", "completed", "-", "5/5", "3/5"], listed.stdout
    assert set(runs) == {run_id, final["id"]}
    assert [run["id"] for run in cli.json("evals", "show", eval_id)["runs"]] == [run_id, final["id"]]
    assert [row[2] for row in _table_rows(cli("evals", "list").stdout) if row[0] == eval_id] == ["exact, close"]


@pytest.mark.timeout(600)
async def test_refusals_name_the_field_at_fault(evals_cli: Cli, write_jsonl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli = evals_cli
    schema = _write_json(tmp_path / "schema.json", QUESTION_SCHEMA)
    bad = _write_json(tmp_path / "bad.json", [{**CRITERIA[0], "operation": "startswith"}])
    refused = cli("evals", "create", "--item-schema", schema, "--criteria", bad)
    assert refused.exit_code == 4 and "Error (HTTP 400" in refused.stderr, refused.output
    assert "param: testing_criteria[0].operation" in refused.stderr and "startswith" in refused.stderr
    as_json = cli("evals", "create", "--item-schema", schema, "--criteria", bad, "--json")
    assert as_json.exit_code == 4 and as_json.stdout == ""
    assert json.loads(as_json.stderr)["error"]["param"] == "testing_criteria[0].operation"

    (tmp_path / "broken.json").write_text('[{"type": "string_check",')
    broken = cli("evals", "create", "--item-schema", schema, "--criteria", str(tmp_path / "broken.json"))
    assert broken.exit_code == 4 and f"--criteria file {tmp_path / 'broken.json'} is not valid JSON" in broken.stderr
    assert cli.json("evals", "list")["data"] == []

    # The whole create body from --spec; --name replaces its name.
    spec = {"name": "spec name", "data_source_config": {"type": "custom", "item_schema": QUESTION_SCHEMA,
            "include_sample_schema": True}, "testing_criteria": CRITERIA[:1]}  # fmt: skip
    created = cli.json("evals", "create", "--spec", _write_json(tmp_path / "spec.json", spec), "--name", "renamed")
    assert created["name"] == "renamed" and [c["name"] for c in created["testing_criteria"]] == ["exact"]
    eval_id = created["id"]

    # A row the item schema refuses: the API's param, and the line of the local file it came from.
    rows = [SAMPLES[0], "", {"item": {"question": "Q", "answer": 7}, "sample": {"output_text": "7"}}]
    mismatched = cli("evals", "run", eval_id, "--samples", str(write_jsonl("rows.jsonl", rows)))
    assert mismatched.exit_code == 4
    assert "param: data_source.source.content[1].item.answer" in mismatched.stderr, mismatched.stderr
    assert f"hint: content[1] is line 3 of {tmp_path / 'rows.jsonl'}." in mismatched.stderr

    # A completions run's body passes every check of the API (template, sampling, items) up to the model.
    items = write_jsonl("items.jsonl", [{"question": q, "answer": a} for q, a, _ in ROWS])
    asked = ["evals", "run", eval_id, "--model", "ft:nobody:x:y:z", "--items", str(items), "--temperature", "0",
             "--max-tokens", "8", "--system", "Answer in one word."]  # fmt: skip
    unknown = cli(*asked, "--user", "{{item.question}}")
    assert unknown.exit_code == 4 and "Error (HTTP 404, model_not_found)" in unknown.stderr, unknown.stderr
    templated = cli(*asked, "--user", "{{answer}}")
    assert templated.exit_code == 4 and "invalid_template" in templated.stderr
    assert "param: data_source.input_messages.template[1].content" in templated.stderr, templated.stderr

    local = cli("evals", "run", eval_id, "--items", str(items))
    assert local.exit_code == 4 and "--items are answered by a model: add --model" in local.stderr
    for args in (["show", "eval_nope"], ["run", "eval_nope", "--samples", str(write_jsonl("s.jsonl", SAMPLES))],
                 ["run", eval_id, "--file-id", "file-nope"], ["show", eval_id, "evalrun_nope"]):  # fmt: skip
        missing = cli("evals", *args)
        assert missing.exit_code == 4 and "Error (HTTP 404" in missing.stderr, (args, missing.output)
    assert cli.json("evals", "show", eval_id)["runs"] == []


@pytest.mark.timeout(600)
async def test_a_run_of_an_uploaded_file(evals_cli: Cli, write_jsonl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A fine-tuning file's lines are items {messages, reference}: graded here without a sample."""
    cli = evals_cli
    uploaded = cli.json("files", "upload", str(write_jsonl("train.jsonl", chat_examples(8))))
    schema = {"type": "object", "properties": {"messages": {"type": "array"}, "reference": {"type": "string"}},
              "required": ["messages", "reference"]}  # fmt: skip
    criteria = [{"type": "string_check", "name": "says plus", "input": "{{item.reference}}", "reference": "plus",
                 "operation": "like"},
                {"type": "string_check", "name": "is five", "input": "{{item.reference}}", "reference": "is 5.",
                 "operation": "like"}]  # fmt: skip
    created = cli.json("evals", "create", "--item-schema", json.dumps(schema), "--criteria", json.dumps(criteria))
    run = cli("evals", "run", created["id"], "--file-id", uploaded["id"], "--wait", "--json")
    assert run.exit_code == 0, run.output
    final = json.loads(run.stdout)
    assert final["data_source"]["source"] == {"type": "file_id", "id": uploaded["id"]}
    # Only the first example (2 plus 3) is "is 5.".
    assert final["result_counts"] == {"total": 8, "errored": 0, "failed": 7, "passed": 1}
    failed = cli.json("evals", "show", created["id"], final["id"], "--failed")["output_items"]
    assert sorted(item["datasource_item_id"] for item in failed) == list(range(1, 8))
    human = cli("evals", "show", created["id"], final["id"])
    first = next(row for row in _table_rows(human.stdout) if row[0] == "0")
    assert first[2:5] == ["pass", "pass 1", "pass 1"] and first[5] == "-", human.stdout


def _docs_example() -> tuple[dict[str, str], list[list[str]]]:
    """docs/cli.md's evals section: its example files by name, and the commands of its first bash block."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    section = text.split("## `evals`", 1)[1].split("\n## ", 1)[0]
    files = dict(re.findall(r"^`([\w.]+)`, [^\n]*:\n\n```\w*\n(.*?)^```", section, re.S | re.M))
    block = re.search(r"^```bash\n(.*?)^```", section, re.S | re.M).group(1)  # type: ignore[union-attr]
    lines = [shlex.split(line, comments=True) for line in block.replace("\\\n", " ").splitlines()]
    return files, [words for words in lines if words]


@pytest.mark.timeout(600)
async def test_the_docs_example_runs_as_written(evals_cli: Cli, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """docs/cli.md's evals walk, its files as written and only its placeholders (eval_..., evalrun_...) replaced."""
    files, commands = _docs_example()
    assert set(files) == {"schema.json", "criteria.json", "samples.jsonl"}, files
    monkeypatch.chdir(tmp_path)
    for name, content in files.items():
        Path(name).write_text(content)
    assert [words[:3] for words in commands] == [["finetune", "evals", word] for word in
                                                 ("create", "run", "show", "show")]  # fmt: skip
    ids: dict[str, str] = {}
    outputs = []
    for words in commands:
        placeholders = [word for word in words if word in ("eval_...", "evalrun_...")]
        assert all(word in ids for word in placeholders), (words, ids)
        result = evals_cli(*(ids.get(word, word) for word in words[1:]))
        assert result.exit_code == 0, (words, result.output)
        outputs.append(result.stdout)
        if words[2] == "create":
            ids["eval_..."] = re.search(r"Created (eval_\w+) \(capitals\)", result.stdout).group(1)  # type: ignore[union-attr]
        if words[2] == "run":
            ids["evalrun_..."] = _detail(result.stdout, "id")
    created, waited, shown, failed = outputs
    assert ["exact", "string_check", "{{sample.output_text}} eq {{item.answer}}"] in _table_rows(created)
    assert (_detail(waited, "status"), _detail(waited, "total"), _detail(waited, "passed")) == ("completed", "2", "1")
    assert ids["evalrun_..."] in shown and "given answers" in shown
    rows = [row for row in _table_rows(failed) if row[1].startswith("outputitem_")]
    assert len(rows) == 1 and rows[0][2:] == ["fail", "fail 0", rows[0][4], "Cusco"], failed
    assert rows[0][4].startswith("fail ")


# ---- the request bodies and exit codes, without a server -------------------------------------------------


def test_a_model_run_asks_with_a_template_or_the_items_messages(tmp_path: Path) -> None:
    rows = LocalRows(tmp_path / "items.jsonl", [{"item": {"question": "Q"}}], [1])
    templated = data_source(model="tiny-llama", items=rows, samples=None, file_id=None,
                            prompting=Prompting(system="Be brief.", user="{{item.question}}", temperature=0.0,
                                                max_tokens=16))  # fmt: skip
    assert templated == {
        "type": "completions",
        "model": "tiny-llama",
        "source": {"type": "file_content", "content": [{"item": {"question": "Q"}}]},
        "input_messages": {"type": "template", "template": [{"role": "system", "content": "Be brief."},
                                                            {"role": "user", "content": "{{item.question}}"}]},
        "sampling_params": {"temperature": 0.0, "max_completion_tokens": 16},
    }  # fmt: skip
    referenced = data_source(model="tiny-llama", items=None, samples=None, file_id="file-1", prompting=Prompting())
    assert referenced == {"type": "completions", "model": "tiny-llama", "source": {"type": "file_id", "id": "file-1"},
                          "input_messages": {"type": "item_reference", "item_reference": "item.messages"}}  # fmt: skip
    whole = Prompting(template='[{"role": "user", "content": "{{item.question}}"}]').input_messages()
    assert whole == {"type": "template", "template": [{"role": "user", "content": "{{item.question}}"}]}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"samples": "rows", "model": "m"}, "--samples already holds the answers"),
        ({"samples": "rows", "file_id": "file-1"}, "exactly one of --items, --samples or --file-id"),
        ({"file_id": "file-1", "prompting": Prompting(user="hi", max_tokens=4)}, "--user, --max-tokens: only for"),
        ({"file_id": "file-1", "model": "m", "prompting": Prompting(user="hi", item_reference="item.x")},
         "--item-reference takes the messages from each item"),
    ],
)  # fmt: skip
def test_options_that_do_not_go_together_are_refused(arguments: dict[str, Any], message: str, tmp_path: Path) -> None:
    rows = LocalRows(tmp_path / "rows.jsonl", [{"item": {}, "sample": {}}], [1])
    given: dict[str, Any] = {"model": None, "items": None, "samples": None, "file_id": None, "prompting": Prompting()}
    given.update({key: rows if value == "rows" else value for key, value in arguments.items()})
    with pytest.raises(CliError, match=re.escape(message)):
        data_source(**given)


def test_create_body_from_options_or_spec(tmp_path: Path) -> None:
    options = dict(name="n", item_schema='{"type": "object"}', criteria=json.dumps(CRITERIA[0]),
                   include_sample_schema=True, metadata={"k": "v"}, spec=None)  # fmt: skip
    assert eval_body(**options) == {  # type: ignore[arg-type]
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}, "include_sample_schema": True},
        "testing_criteria": [CRITERIA[0]],  # one grader given on its own
        "name": "n",
        "metadata": {"k": "v"},
    }
    with pytest.raises(CliError, match="leave out --item-schema"):
        eval_body(**{**options, "spec": '{"name": "x"}'})  # type: ignore[arg-type]
    with pytest.raises(CliError, match="Give --item-schema and --criteria"):
        eval_body(**{**options, "criteria": None})  # type: ignore[arg-type]
    assert [exit_code_for(status) for status in ("completed", "failed", "canceled")] == [0, 1, 2]


def test_waiting_on_a_lost_server_says_the_run_goes_on() -> None:
    state = CliState(base_url=f"http://127.0.0.1:{free_port()}", api_key="sk-test", json=True)
    try:
        with pytest.raises(ConnectionFailed) as lost:
            wait_for_run(state, "eval_x", "evalrun_y", poll_seconds=0)
    finally:
        state.close()
    assert "/v1/evals/eval_x/runs/evalrun_y" in lost.value.message
    assert str(lost.value.hint).endswith("The run goes on: see it with finetune evals show eval_x evalrun_y")
