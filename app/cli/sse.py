"""A job's server-sent event stream, followed across dropped connections with Last-Event-ID.

The API sends `event: event` messages (an OpenAI event object, `id:` set to its
id), keep-alive comments, and one final `event: done` with the job's status.
A drop (refused, reset, silent past the read timeout, or a stream that ends
without `done`) is followed by a reconnect with exponential backoff, sending
Last-Event-ID. Ids already seen are skipped, so every event is shown once.

The cursor sent is the smallest of the last `REWIND_EVENTS` ids seen, not the
very last one: event ids sort by millisecond, so two events of the same
millisecond (or one committed late) can arrive out of id order, and a cursor
at the newest id would skip the other for good. Re-sent events are dropped here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from app.cli.client import ApiClient, path_segment
from app.cli.errors import ApiError, CliError, ConnectionFailed

# The API pings every 15 s, so 45 s of silence means the connection is dead even if TCP has not noticed.
STREAM_TIMEOUT = httpx.Timeout(10.0, read=45.0)
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0
REWIND_EVENTS = 32


@dataclass(frozen=True)
class SseMessage:
    event: str
    data: str
    id: str | None


@dataclass(frozen=True)
class JobEvent:
    payload: dict[str, Any]


@dataclass(frozen=True)
class KeepAlive:
    """A comment line: the connection is alive; a moment for the caller to look around."""


@dataclass(frozen=True)
class StreamDone:
    status: str


StreamItem = JobEvent | KeepAlive | StreamDone


def parse_sse(lines: Iterable[str]) -> Iterator[SseMessage | None]:
    """Messages in the text/event-stream format; None for each comment (keep-alive) line."""
    event, event_id = "message", None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield SseMessage(event, "\n".join(data), event_id)
            event, data, event_id = "message", [], None
            continue
        if line.startswith(":"):
            yield None
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            event_id = value


def backoff_seconds(failures: int) -> float:
    return float(min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (failures - 1)))


RetryNotice = Callable[[int, float, str], None]


class JobEventStream:
    """Iterate a job's events to the end, reconnecting up to `max_retries` times in a row."""

    def __init__(self, client: ApiClient, job_id: str, *, max_retries: int, on_retry: RetryNotice,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        self.client = client
        self.job_id = job_id
        self.max_retries = max_retries
        self.on_retry = on_retry
        self.sleep = sleep
        self.reconnects = 0
        self._seen: set[str] = set()
        self._arrived: list[str] = []

    def __iter__(self) -> Iterator[StreamItem]:
        failures = 0
        while True:
            try:
                for item in self._connect():
                    failures = 0
                    yield item
                    if isinstance(item, StreamDone):
                        return
                reason = "the stream ended before the job did"
            except ConnectionFailed as error:
                reason = error.message
            except ApiError as error:
                if error.status_code < 500 and error.status_code != 429:
                    raise
                reason = error.message
            failures += 1
            if failures > self.max_retries:
                raise CliError(f"Lost the event stream of {self.job_id} after {self.max_retries} reconnects: {reason}")
            delay = backoff_seconds(failures)
            self.on_retry(failures, delay, reason)
            self.sleep(delay)
            self.reconnects += 1

    def mark_seen(self, event_id: str) -> bool:
        """Record an id; False if it was seen before (the caller then drops the event)."""
        if event_id in self._seen:
            return False
        self._seen.add(event_id)
        self._arrived.append(event_id)
        return True

    def resume_cursor(self) -> str | None:
        """Where a reconnect resumes: far enough back that out-of-order neighbours are not lost."""
        return min(self._arrived[-REWIND_EVENTS:]) if self._arrived else None

    def _connect(self) -> Iterator[StreamItem]:
        cursor = self.resume_cursor()
        headers = {"Last-Event-ID": cursor} if cursor else None
        path = f"/v1/fine_tuning/jobs/{path_segment(self.job_id)}/events"
        with self.client.stream(path, params={"stream": "true"}, headers=headers, timeout=STREAM_TIMEOUT) as response:
            for message in parse_sse(response.iter_lines()):
                if message is None:
                    yield KeepAlive()
                elif message.event == "done":
                    yield StreamDone(str(_decoded(message).get("status", "unknown")))
                    return
                else:
                    payload = _decoded(message)
                    event_id = message.id or str(payload.get("id", ""))
                    if not event_id or self.mark_seen(event_id):
                        yield JobEvent(payload)


def _decoded(message: SseMessage) -> dict[str, Any]:
    try:
        value = json.loads(message.data)
    except ValueError:
        raise CliError(f"The event stream sent data that is not JSON: {message.data[:200]!r}") from None
    if not isinstance(value, dict):
        raise CliError(f"The event stream sent an unexpected message: {message.data[:200]!r}")
    return value
