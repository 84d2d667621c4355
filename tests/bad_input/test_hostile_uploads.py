"""Hostile uploads at scale: each one a clean 4xx with its code, nothing stored, the process still up,
and the API's memory bounded while the body streams in (peak RSS measured with psutil).

The quick form sends the oversize body against a 64 MiB limit and a 16 MiB line; the full form
(FULL_CHAOS=1) sends them against the production defaults, plus a 10-million-line file and a
single 100 MB line. Small malformed forms (every name refusal, cut bodies) are tests/api's.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx
import psutil
import pytest
from sqlalchemy import func, select

from app.files.tables import File
from bench.rss import RssWatch
from tests.api.conftest import listing
from tests.bad_input.conftest import MULTIPART_HEADERS, ScaleApi, multipart
from tests.chaos.evidence import full_chaos, record
from tests.jobs.datasets import chat_lines, jsonl

pytestmark = pytest.mark.slow
MiB = 2**20
# Streaming is bounded by design: a chunk, and at most one line up to MAX_LINE_BYTES (4 MiB), in memory.
RSS_GROWTH_LIMIT_MIB = 64
GOOD_LINES = jsonl(chat_lines(64))
BAD_UTF8_LINE = b'{"messages": "\xff\xfe\xc3\x28"}\n'


def repeated(unit: bytes, total: int, chunk: int = MiB) -> Iterator[bytes]:
    """`total` bytes made of `unit`, generated chunk by chunk."""
    block = unit * max(1, chunk // len(unit))
    sent = 0
    while sent < total:
        piece = block[: total - sent]
        sent += len(piece)
        yield piece


def one_long_line(size: int) -> Iterator[bytes]:
    yield b'{"messages": [{"role": "user", "content": "'
    yield from repeated(b"a", size)
    yield b'"}]}\n'


def deep_line(depth: int) -> Iterator[bytes]:
    yield b"[" * depth + b"]" * depth + b"\n"


@dataclass(frozen=True)
class Hostile:
    name: str
    body: Callable[[ScaleApi], Iterator[bytes]]
    size: Callable[[ScaleApi], int]
    status: int
    code: str
    filename: bytes = b"train.jsonl"
    full_only: bool = False


def _line_size(api: ScaleApi) -> int:
    return 100 * 10**6 if full_chaos() else 16 * MiB


HOSTILE = [
    Hostile("oversize_streamed", lambda api: repeated(GOOD_LINES, api.max_upload_bytes * 5 // 4),
            lambda api: api.max_upload_bytes * 5 // 4, 413, "file_too_large"),
    Hostile("one_huge_line", lambda api: one_long_line(_line_size(api)), _line_size, 400, "line_too_long"),
    Hostile("ten_million_lines", lambda api: repeated(b"{}\n", 3 * 10_000_000), lambda api: 3 * 10_000_000,
            400, "invalid_file", full_only=True),
    Hostile("bad_utf8", lambda api: iter([GOOD_LINES, BAD_UTF8_LINE]), lambda api: len(GOOD_LINES + BAD_UTF8_LINE),
            400, "invalid_utf8"),
    Hostile("deeply_nested_json", lambda api: deep_line(100_000), lambda api: 200_001, 400, "json_too_deep"),
    Hostile("path_traversal_name", lambda api: repeated(GOOD_LINES, 8 * MiB), lambda api: 8 * MiB, 400,
            "invalid_filename", filename=b"../../../../etc/cron.d/x.jsonl"),
    Hostile("nul_in_name", lambda api: repeated(GOOD_LINES, 8 * MiB), lambda api: 8 * MiB, 400,
            "invalid_filename", filename=b"train\x00.jsonl"),
]  # fmt: skip


async def _file_rows(sessionmaker: Any) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(File)) or 0)


def _alive(api: ScaleApi) -> bool:
    return psutil.pid_exists(api.pid) and httpx.get(f"{api.url}/health", timeout=10).status_code == 200


@pytest.fixture
async def uploader(make_user):  # type: ignore[no-untyped-def]
    return await make_user("hostile@acme.example.com")


@pytest.mark.parametrize(
    "hostile",
    [pytest.param(h, id=h.name, marks=[pytest.mark.skipif(h.full_only and not full_chaos(), reason="FULL_CHAOS=1")])
     for h in HOSTILE],
)  # fmt: skip
async def test_hostile_upload_is_refused_cleanly(  # type: ignore[no-untyped-def]
    hostile: Hostile, scale_api: ScaleApi, uploader, settings, sessionmaker
) -> None:
    before = listing(settings.datasets_path)
    started = time.monotonic()
    with RssWatch(scale_api.pid) as memory:
        response = httpx.post(
            f"{scale_api.url}/v1/files", content=multipart(hostile.filename, hostile.body(scale_api)),
            headers={**uploader.headers, **MULTIPART_HEADERS}, timeout=600,
        )  # fmt: skip
    seconds = time.monotonic() - started
    error = response.json().get("error", {})
    figures = {
        "bytes_sent": hostile.size(scale_api),
        "status": response.status_code,
        "code": error.get("code"),
        "seconds": round(seconds, 1),
        "api_rss_baseline_mib": round(memory.baseline / MiB, 1),
        "api_rss_growth_mib": memory.growth_mib,
        "response_bytes": len(response.content),
        "error_count": (error.get("details") or {}).get("error_count"),
    }
    record(f"bad_input_{hostile.name}", figures)
    assert (response.status_code, error.get("code")) == (hostile.status, hostile.code), figures
    assert listing(settings.datasets_path) == before, "something was left in storage"
    assert await _file_rows(sessionmaker) == 0
    assert memory.growth_mib < RSS_GROWTH_LIMIT_MIB, figures
    assert figures["response_bytes"] < 256 * 1024, "the error report is capped"
    assert _alive(scale_api)


def _read_answer(connection: socket.socket) -> str:
    """One HTTP/1.1 answer: its head, then as many body bytes as its Content-Length says."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, body = received.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return (head + b"\r\n\r\n" + body).decode("latin-1")


async def test_announced_oversize_is_refused_before_the_body_is_read(  # type: ignore[no-untyped-def]
    scale_api: ScaleApi, uploader, sessionmaker
) -> None:
    """Content-Length over the limit: 413 at once, without waiting for (or reading) the body."""
    target = urlparse(scale_api.url)
    announced = scale_api.max_upload_bytes * 4
    head = (
        f"POST /v1/files HTTP/1.1\r\nHost: {target.netloc}\r\nAuthorization: {uploader.headers['Authorization']}\r\n"
        f"Content-Type: {MULTIPART_HEADERS['Content-Type']}\r\nContent-Length: {announced}\r\n\r\n"
    ).encode()
    started = time.monotonic()
    with socket.create_connection((target.hostname, target.port), timeout=30) as connection:
        connection.sendall(head + next(multipart(b"big.jsonl", iter([]))))  # the body's first bytes only
        answer = _read_answer(connection)
    seconds = time.monotonic() - started
    status = int(answer.split(" ", 2)[1])
    body = json.loads(answer.split("\r\n\r\n", 1)[1] or "{}")
    code = body.get("error", {}).get("code")
    figures = {"bytes_announced": announced, "status": status, "seconds": round(seconds, 2), "code": code}
    record("bad_input_oversize_announced", figures)
    assert status == 413 and body["error"]["code"] == "file_too_large"
    assert seconds < 10 and await _file_rows(sessionmaker) == 0
    assert _alive(scale_api)


async def test_deeply_nested_json_request_body_is_a_400(scale_api: ScaleApi, uploader) -> None:  # type: ignore[no-untyped-def]
    """100,000 levels of nesting in a JSON request body: a 4xx from the parser, not a crash."""
    depth = 100_000
    body = b'{"model": "tiny", "training_file": "file-x", "metadata": ' + b"[" * depth + b"]" * depth + b"}"
    response = httpx.post(f"{scale_api.url}/v1/fine_tuning/jobs", content=body, timeout=60,
                          headers={**uploader.headers, "Content-Type": "application/json"})  # fmt: skip
    record("bad_input_nested_json_body", {"depth": depth, "status": response.status_code,
                                          "code": response.json().get("error", {}).get("code")})  # fmt: skip
    assert 400 <= response.status_code < 500, response.text[:500]
    assert _alive(scale_api)
