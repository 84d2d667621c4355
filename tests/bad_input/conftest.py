"""An API process of its own for hostile uploads, with its memory watched while they stream in.

The quick form lowers the upload limit to 64 MiB so an oversize upload costs seconds; the full
form (FULL_CHAOS=1) keeps every production default (512 MiB). Bodies are generated while they
are sent, never held in memory here either.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from app.devstack.processes import free_port, wait_until
from tests.chaos.evidence import full_chaos

QUICK_UPLOAD_LIMIT = 64 * 1024 * 1024
BOUNDARY = "bad-input-boundary-5f0c"


@dataclass
class ScaleApi:
    url: str
    pid: int
    max_upload_bytes: int


@pytest.fixture(scope="session")
def scale_api(stack) -> Iterator[ScaleApi]:  # type: ignore[no-untyped-def]
    from app.core.config import Settings

    limit = Settings.model_fields["max_upload_bytes"].default if full_chaos() else QUICK_UPLOAD_LIMIT
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "app.api.user_app:app", "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log"]  # fmt: skip
    process = stack.spawn("user-api-scale", argv, {**stack.env, "MAX_UPLOAD_BYTES": str(limit)})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/health", timeout=3).status_code == 200, 90, "scale user API", process)
        yield ScaleApi(url, process.pid, limit)
    finally:
        process.stop()
        stack.processes.remove(process)


def multipart(filename: bytes, chunks: Iterator[bytes], purpose: bytes = b"fine-tune") -> Iterator[bytes]:
    """A multipart/form-data body streamed part by part (a name no client library would send is fine)."""
    delimiter = b"--" + BOUNDARY.encode()
    yield delimiter + b'\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n' + purpose + b"\r\n"
    yield delimiter + b'\r\nContent-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
    yield b"Content-Type: application/octet-stream\r\n\r\n"
    yield from chunks
    yield b"\r\n" + delimiter + b"--\r\n"


MULTIPART_HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
