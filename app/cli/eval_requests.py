"""The request bodies of `finetune evals`: an eval's create body and a run's data source, from options and files.

Only what the CLI can know is checked here (a file that is missing or not JSON, options that do not go
together); everything else (graders, schemas, templates, rows against the item schema) is the API's to
refuse, and its 400 names the field at fault.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.cli.errors import CliError

DEFAULT_ITEM_REFERENCE = "item.messages"
SAMPLE_ROW = '{"item": {...}, "sample": {"output_text": "..."}}'
CONTENT_PARAM = re.compile(r"^data_source\.source\.content\[(\d+)\]")


def read_json(value: str, option: str) -> Any:
    """Inline JSON (a value that starts with `{` or `[`) or the path of a JSON file."""
    if value.lstrip().startswith(("{", "[")):
        source, where = value, f"{option} (inline JSON)"
    else:
        path = Path(value).expanduser()
        if not path.is_file():
            raise CliError(f"{option}: '{value}' is neither inline JSON nor a file.")
        source, where = path.read_text(encoding="utf-8"), f"{option} file {path}"
    try:
        return json.loads(source)
    except ValueError as error:
        raise CliError(f"{where} is not valid JSON: {error}") from None


def _json_object(value: str, option: str) -> dict[str, Any]:
    parsed = read_json(value, option)
    if not isinstance(parsed, dict):
        raise CliError(f"{option} must be a JSON object, not {type(parsed).__name__}.")
    return parsed


def eval_body(
    *,
    name: str | None,
    item_schema: str | None,
    criteria: str | None,
    include_sample_schema: bool,
    metadata: dict[str, str] | None,
    spec: str | None,
) -> dict[str, Any]:
    """`POST /v1/evals`'s body: from --spec (OpenAI's whole body), or from --item-schema and --criteria.

    --name and --metadata, when given, replace the spec's.
    """
    if spec is not None:
        if item_schema is not None or criteria is not None or include_sample_schema:
            raise CliError(
                "--spec already holds data_source_config and testing_criteria: "
                "leave out --item-schema, --criteria and --include-sample-schema."
            )
        body = _json_object(spec, "--spec")
    elif item_schema is None or criteria is None:
        raise CliError("Give --item-schema and --criteria (or --spec with the whole create body).")
    else:
        graders = read_json(criteria, "--criteria")
        body = {
            "data_source_config": {
                "type": "custom",
                "item_schema": _json_object(item_schema, "--item-schema"),
                "include_sample_schema": include_sample_schema,
            },
            # One grader may be given on its own: the API takes a list.
            "testing_criteria": [graders] if isinstance(graders, dict) else graders,
        }
    if name is not None:
        body["name"] = name
    if metadata is not None:
        body["metadata"] = metadata
    return body


@dataclass(frozen=True)
class LocalRows:
    """The rows of a local JSONL file, sent inline (`file_content`), and the line each came from."""

    path: Path
    rows: list[dict[str, Any]]
    lines: list[int]

    def hint_for(self, param: Any) -> str | None:
        """Where in the file the API's `data_source.source.content[N]` is."""
        found = CONTENT_PARAM.match(param) if isinstance(param, str) else None
        if found is None or int(found.group(1)) >= len(self.lines):
            return None
        return f"content[{found.group(1)}] is line {self.lines[int(found.group(1))]} of {self.path}."


def read_rows(path: Path, option: str, *, with_samples: bool) -> LocalRows:
    """Rows `{"item": …, "sample": …}` (--samples) or `{"item": …}` (--items: a line without `item` is the item)."""
    if not path.is_file():
        raise CliError(f"{option}: no such file {path}.")
    rows, lines = [], []
    with path.open(encoding="utf-8") as text:
        for number, line in enumerate(text, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as error:
                raise CliError(f"{option}: line {number} of {path} is not JSON: {error}") from None
            if not isinstance(value, dict):
                raise CliError(f"{option}: line {number} of {path} is not a JSON object.")
            if with_samples and not ("item" in value and "sample" in value):
                raise CliError(f"{option}: line {number} of {path} is not a row {SAMPLE_ROW}.")
            rows.append(value if "item" in value else {"item": value})
            lines.append(number)
    if not rows:
        raise CliError(f"{option}: {path} holds no rows.")
    return LocalRows(path, rows, lines)


@dataclass(frozen=True)
class Prompting:
    """How a `--model` run asks the model: a template (--template, or --system/--user) or an item reference."""

    template: str | None = None
    system: str | None = None
    user: str | None = None
    item_reference: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None

    def given(self) -> list[str]:
        options = {"--template": self.template, "--system": self.system, "--user": self.user,
                   "--item-reference": self.item_reference, "--temperature": self.temperature,
                   "--max-tokens": self.max_tokens}  # fmt: skip
        return [option for option, value in options.items() if value is not None]

    def input_messages(self) -> dict[str, Any]:
        templated = self.template is not None or self.system is not None or self.user is not None
        if templated and self.item_reference is not None:
            raise CliError("--item-reference takes the messages from each item: leave out --template/--system/--user.")
        if self.template is not None:
            if self.system is not None or self.user is not None:
                raise CliError("--template holds every message: leave out --system and --user.")
            messages = read_json(self.template, "--template")
            if isinstance(messages, dict) and "template" in messages:  # the whole input_messages object
                messages = messages["template"]
            return {"type": "template", "template": messages}
        if templated:
            roles = (("system", self.system), ("user", self.user))
            return {"type": "template", "template": [{"role": role, "content": text} for role, text in roles if text]}
        return {"type": "item_reference", "item_reference": self.item_reference or DEFAULT_ITEM_REFERENCE}

    def sampling_params(self) -> dict[str, Any]:
        chosen = {"temperature": self.temperature, "max_completion_tokens": self.max_tokens}
        return {name: value for name, value in chosen.items() if value is not None}


def data_source(
    *, model: str | None, items: LocalRows | None, samples: LocalRows | None, file_id: str | None, prompting: Prompting
) -> dict[str, Any]:
    """The run's `data_source`: `completions` with --model (the platform samples it), else `jsonl`."""
    given = [option for option, value in (("--items", items), ("--samples", samples), ("--file-id", file_id))
             if value is not None]  # fmt: skip
    if len(given) != 1:
        raise CliError(f"Give exactly one of --items, --samples or --file-id (got {', '.join(given) or 'none'}).")
    if items is not None and model is None:
        raise CliError("--items are answered by a model: add --model (or give --samples with the answers).")
    if samples is not None and model is not None:
        raise CliError("--samples already holds the answers to grade: leave out --model (or use --items).")
    if model is None and prompting.given():
        raise CliError(f"{', '.join(prompting.given())}: only for a run that samples a model: add --model.")
    local = items or samples
    source = {"type": "file_content", "content": local.rows} if local else {"type": "file_id", "id": file_id}
    if model is None:
        return {"type": "jsonl", "source": source}
    body = {"type": "completions", "model": model, "source": source, "input_messages": prompting.input_messages()}
    sampling = prompting.sampling_params()
    if sampling:
        body["sampling_params"] = sampling
    return body


def run_body(source: dict[str, Any], name: str | None, metadata: dict[str, str] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"data_source": source}
    if name is not None:
        body["name"] = name
    if metadata is not None:
        body["metadata"] = metadata
    return body
