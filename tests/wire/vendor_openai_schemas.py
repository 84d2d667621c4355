"""Vendor the component schemas of OpenAI's OpenAPI document that the wire tests validate against.

Run by hand when the pin moves (the tests never touch the network):

    git -C <openai-openapi clone> show <commit>:openapi.json > /tmp/openapi.json
    python -m tests.wire.vendor_openai_schemas /tmp/openapi.json <commit>

It keeps the named response schemas and every schema they reference, unchanged, and writes
`tests/wire/openai_schemas.json` with the source repository, commit and path beside them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

SOURCE_REPOSITORY = "openai/openai-openapi"
SOURCE_PATH = "openapi.json"
TARGET = Path(__file__).with_name("openai_schemas.json")
REF_PREFIX = "#/components/schemas/"
# The objects the user API answers with (OpenAI's operation responses) and the error shape.
ROOTS = (
    "OpenAIFile",
    "ListFilesResponse",
    "DeleteFileResponse",
    "FineTuningJob",
    "ListPaginatedFineTuningJobsResponse",
    "FineTuningJobEvent",
    "ListFineTuningJobEventsResponse",
    "FineTuningJobCheckpoint",
    "ListFineTuningJobCheckpointsResponse",
    "Model",
    "ListModelsResponse",
    "DeleteModelResponse",
    "ErrorResponse",
    # Serving (`/v1/chat/completions`): the answer, streamed or not.
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    # Evaluation (`/v1/evals`): evals, runs and output items, one by one and in lists.
    "Eval",
    "EvalList",
    "EvalRun",
    "EvalRunList",
    "EvalRunOutputItem",
    "EvalRunOutputItemList",
)


def references(node: Any) -> set[str]:
    """Names of the component schemas a schema refers to, at any depth."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            found.add(ref[len(REF_PREFIX) :])
        for value in node.values():
            found |= references(value)
    elif isinstance(node, list):
        for value in node:
            found |= references(value)
    return found


def closure(components: dict[str, Any], roots: tuple[str, ...]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in kept:
            continue
        kept[name] = components[name]
        pending.extend(sorted(references(kept[name]) - set(kept)))
    return dict(sorted(kept.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("openapi", type=Path, help="openapi.json of openai/openai-openapi")
    parser.add_argument("commit", help="the commit it was taken from (40 hex digits)")
    args = parser.parse_args()
    document = json.loads(args.openapi.read_text())
    vendored = {
        "source": {
            "repository": SOURCE_REPOSITORY,
            "commit": args.commit,
            "path": SOURCE_PATH,
            "openapi": document["openapi"],
            "info_version": document["info"]["version"],
        },
        "roots": list(ROOTS),
        "schemas": closure(document["components"]["schemas"], ROOTS),
    }
    TARGET.write_text(json.dumps(vendored, indent=1, sort_keys=False) + "\n")
    print(f"{len(vendored['schemas'])} schemas from {SOURCE_REPOSITORY}@{args.commit} into {TARGET}")


if __name__ == "__main__":
    main()
