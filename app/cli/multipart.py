"""A multipart/form-data body streamed from disk: the file is never read into memory whole."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 256 * 1024


def _quoted(value: str) -> str:
    """A form-data parameter value: quotes and line breaks escaped the way browsers do (WHATWG)."""
    return value.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")


@dataclass(frozen=True)
class MultipartUpload:
    """Form fields, then one file part; `content_length` is exact so the server can refuse early."""

    path: Path
    fields: dict[str, str]
    file_field: str = "file"
    boundary: str = ""

    def __post_init__(self) -> None:
        if not self.boundary:
            object.__setattr__(self, "boundary", f"finetune-{secrets.token_hex(16)}")

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def file_bytes(self) -> int:
        return self.path.stat().st_size

    def _head(self) -> bytes:
        parts = [
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n{value}\r\n'
            for name, value in self.fields.items()
        ]
        disposition = f'form-data; name="{_quoted(self.file_field)}"; filename="{_quoted(self.path.name)}"'
        parts.append(
            f"--{self.boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        return "".join(parts).encode("utf-8")

    def _tail(self) -> bytes:
        return f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_length(self) -> int:
        return len(self._head()) + self.file_bytes + len(self._tail())

    def body(self, on_file_bytes: Callable[[int], None] = lambda _: None) -> Iterator[bytes]:
        """The body, one chunk at a time; `on_file_bytes` hears how many file bytes each chunk carried."""
        yield self._head()
        with self.path.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                yield chunk
                on_file_bytes(len(chunk))
        yield self._tail()
