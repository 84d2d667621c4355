"""`finetune` against the running user API: login, files, models, and every error path."""

from __future__ import annotations

import json
import stat

from app.devstack.processes import free_port
from tests.cli.conftest import Cli, chat_examples


def test_login_saves_a_private_config_and_refuses_a_bad_key(cli: Cli) -> None:
    refused = cli("login", "--base-url", cli.base_url, "--api-key", "sk-wrong", env={"FINETUNE_API_KEY": None})
    assert refused.exit_code == 4
    assert "Error (HTTP 401, invalid_api_key)" in refused.stderr and "finetune login" in refused.stderr
    assert not cli.config.exists()

    # Prompted: the URL (default offered) and the hidden key.
    logged = cli("login", input=f"{cli.base_url}\n{cli.api_key}\n",
                 env={"FINETUNE_API_KEY": None, "FINETUNE_BASE_URL": None})  # fmt: skip
    assert logged.exit_code == 0, logged.output
    assert f"Logged in to {cli.base_url}" in logged.stdout
    assert cli.api_key not in logged.output
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600
    assert cli.api_key in cli.config.read_text()

    # Later commands need neither flag nor environment.
    listed = cli("files", "list", "--json", env={"FINETUNE_API_KEY": None, "FINETUNE_BASE_URL": None})
    assert listed.exit_code == 0 and json.loads(listed.stdout)["data"] == []


def test_missing_key_and_unreachable_server_are_clear(cli: Cli) -> None:
    missing = cli("files", "list", env={"FINETUNE_API_KEY": None})
    assert missing.exit_code == 4 and "No API key" in missing.stderr

    dead = f"http://127.0.0.1:{free_port()}"
    unreachable = cli("--base-url", dead, "jobs", "list")
    assert unreachable.exit_code == 4
    assert f"Could not reach {dead}/v1/fine_tuning/jobs" in unreachable.stderr

    as_json = cli("--base-url", dead, "files", "list", "--json")
    assert as_json.exit_code == 4 and as_json.stdout == ""
    assert json.loads(as_json.stderr)["error"]["type"] == "connection_error"


def test_upload_list_show_delete(cli: Cli, write_jsonl) -> None:  # type: ignore[no-untyped-def]
    path = write_jsonl("train.jsonl", chat_examples(20))
    uploaded = cli.json("files", "upload", str(path))
    assert uploaded["status"] == "processed" and uploaded["bytes"] == path.stat().st_size
    assert uploaded["statistics"]["examples"] == 20 and uploaded["filename"] == "train.jsonl"

    human = cli("files", "upload", str(path))
    assert human.exit_code == 0 and "Uploaded file-" in human.stdout and "examples" in human.stdout

    listed = cli.json("files", "list")
    assert uploaded["id"] in {file["id"] for file in listed["data"]}
    table = cli("files", "list")
    assert uploaded["id"] in table.stdout and "train.jsonl" in table.stdout

    assert cli.json("files", "show", uploaded["id"])["id"] == uploaded["id"]
    assert cli.json("files", "delete", uploaded["id"]) == {"id": uploaded["id"], "object": "file", "deleted": True}
    gone = cli("files", "show", uploaded["id"])
    assert gone.exit_code == 4 and "HTTP 404" in gone.stderr and uploaded["id"] in gone.stderr


def test_rejected_upload_prints_every_bad_line(cli: Cli, write_jsonl) -> None:  # type: ignore[no-untyped-def]
    good = chat_examples(1)[0]
    rows = [good, "{not json", good, {"prompt": "no messages here"},
            {"messages": [{"role": "user", "content": "only a question"}]}, good]  # fmt: skip
    path = write_jsonl("bad.jsonl", rows)

    as_json = cli("files", "upload", str(path), "--json")
    assert as_json.exit_code == 4 and as_json.stdout == ""
    error = json.loads(as_json.stderr)["error"]
    assert error["param"] == "file"
    reported = error["details"]["errors"]
    assert {entry["line"] for entry in reported} == {2, 4, 5}

    human = cli("files", "upload", str(path))
    assert human.exit_code == 4
    assert "param: file" in human.stderr and "Problems found" in human.stderr
    headline = next(line for line in human.stderr.splitlines() if line.startswith("Error"))
    assert headline.endswith("3 problem(s).")  # the inline list of the API's message gives way to the table
    table_rows = [line for line in human.stderr.splitlines() if line.startswith("│")]
    for entry in reported:
        assert any(f"│ {entry['line']} " in row and entry["code"] in row for row in table_rows), (entry, human.stderr)
    assert cli.json("files", "list")["data"] == []


def test_unknown_ids_answer_cleanly(cli: Cli) -> None:
    commands = [
        ["jobs", "show", "ftjob-nope"],
        ["jobs", "watch", "ftjob-nope"],
        ["jobs", "cancel", "ftjob-nope"],
        ["models", "show", "ft:tiny:org:x:ftjob-nope"],
        ["files", "search", "file-nope", "capital"],
    ]
    for args in commands:
        result = cli(*args)
        assert result.exit_code == 4, (args, result.output)
        assert "Error (HTTP 404" in result.stderr, (args, result.stderr)


def test_create_refuses_a_missing_local_file(cli: Cli) -> None:
    result = cli("jobs", "create", "--model", "tiny-llama", "--train", "no/such/file.jsonl")
    assert result.exit_code == 4
    assert "--train: 'no/such/file.jsonl' is neither a file id" in result.stderr


def test_create_reports_the_api_param(cli: Cli, write_jsonl) -> None:  # type: ignore[no-untyped-def]
    uploaded = cli.json("files", "upload", str(write_jsonl("train.jsonl", chat_examples(20))))
    result = cli("jobs", "create", "--model", "no-such-model", "--train", uploaded["id"])
    assert result.exit_code == 4
    assert "no-such-model" in result.stderr and "param: model" in result.stderr


def test_models_list_shows_the_catalog(cli: Cli, tiny_model: str) -> None:
    listed = cli.json("models", "list")
    assert tiny_model in {model["id"] for model in listed["data"]}
    assert cli.json("models", "show", tiny_model)["id"] == tiny_model
    human = cli("models", "list")
    assert tiny_model in human.stdout
