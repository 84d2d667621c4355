"""Every response a client received, and the OpenAI schema each must satisfy.

`Recorder` hooks into the httpx client under the official SDK (and under plain httpx calls for
what the SDK has no method for: the SSE stream, a trailing slash), so what is validated is what
went over the wire, byte for byte.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from openai import OpenAI

from tests.wire.openai_wire import violations

# (method, path pattern, OpenAI component schema of a 2xx answer); None: not JSON (file content).
ROUTES: list[tuple[str, str, str | None]] = [
    ("POST", r"/v1/files", "OpenAIFile"),
    ("GET", r"/v1/files", "ListFilesResponse"),
    ("GET", r"/v1/files/[^/]+", "OpenAIFile"),
    ("DELETE", r"/v1/files/[^/]+", "DeleteFileResponse"),
    ("GET", r"/v1/files/[^/]+/content", None),
    ("POST", r"/v1/fine_tuning/jobs", "FineTuningJob"),
    ("GET", r"/v1/fine_tuning/jobs", "ListPaginatedFineTuningJobsResponse"),
    ("GET", r"/v1/fine_tuning/jobs/[^/]+", "FineTuningJob"),
    ("POST", r"/v1/fine_tuning/jobs/[^/]+/(cancel|pause|resume)", "FineTuningJob"),
    ("GET", r"/v1/fine_tuning/jobs/[^/]+/events", "ListFineTuningJobEventsResponse"),
    ("GET", r"/v1/fine_tuning/jobs/[^/]+/checkpoints", "ListFineTuningJobCheckpointsResponse"),
    ("GET", r"/v1/models", "ListModelsResponse"),
    ("GET", r"/v1/models/.+", "Model"),
    ("DELETE", r"/v1/models/.+", "DeleteModelResponse"),
    ("POST", r"/v1/chat/completions", "CreateChatCompletionResponse"),
]


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def sse_events(self) -> list[tuple[str, Any]]:
        """(event name, parsed data) of each server-sent event of a stream body."""
        events: list[tuple[str, Any]] = []
        name, data = "message", []
        for line in self.body.decode().splitlines():
            if not line:
                if data:
                    events.append((name, json.loads("\n".join(data))))
                name, data = "message", []
            elif line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].strip())
        return events


@dataclass
class Recorder:
    exchanges: list[Exchange] = field(default_factory=list)

    def _record(self, response: httpx.Response) -> None:
        response.read()
        self.exchanges.append(Exchange(response.request.method, response.request.url.path, response.status_code,
                                       response.headers.get("content-type", ""), response.content))  # fmt: skip

    def http(self, base_url: str, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=base_url, headers=headers, timeout=600,
                            event_hooks={"response": [self._record]})  # fmt: skip

    def sdk(self, base_url: str, key: str) -> OpenAI:
        """The official client as a user builds it, over a recorded connection (no retries: every answer shows)."""
        return OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, http_client=self.http(base_url, key))


def schema_of(exchange: Exchange) -> str | None:
    """The OpenAI schema `exchange` answers with; AssertionError for a route this table does not know."""
    if exchange.status >= 400:
        return "ErrorResponse"
    for method, pattern, schema in ROUTES:
        if method == exchange.method and re.fullmatch(pattern, exchange.path):
            return schema
    raise AssertionError(f"no OpenAI schema known for {exchange.method} {exchange.path}")


def wire_violations(exchanges: list[Exchange]) -> tuple[list[str], dict[str, int]]:
    """Every schema violation of every response (and of each SSE event), and how many bodies each schema checked."""
    found: list[str] = []
    checked: dict[str, int] = {}

    def check(schema: str, body: Any, where: str) -> None:
        checked[schema] = checked.get(schema, 0) + 1
        found.extend(f"{where}: {problem}" for problem in violations(schema, body))

    for exchange in exchanges:
        where = f"{exchange.method} {exchange.path} {exchange.status}"
        if exchange.content_type.startswith("text/event-stream"):
            for name, data in exchange.sse_events():
                if name == "event":
                    check("FineTuningJobEvent", data, f"{where} (SSE)")
            continue
        schema = schema_of(exchange)
        if schema is not None:
            check(schema, exchange.json(), where)
    return found, checked
