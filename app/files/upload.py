"""Streaming multipart upload: the file part goes to disk chunk by chunk, never whole into memory.

Each chunk is also fed to a sink (the dataset validator), and the upload is
cut off with 413 as soon as it passes the size limit.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from app.core.errors import BadRequest, PayloadTooLarge

MAX_FIELD_BYTES = 4096


@dataclass
class UploadedForm:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    file_bytes: int = 0


@dataclass
class _PartState:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_field: bytes = b""
    header_value: bytes = b""
    name: str | None = None
    is_file: bool = False
    value: bytearray = field(default_factory=bytearray)


def boundary_of(content_type: str | None) -> bytes:
    if not content_type:
        raise BadRequest("Expected a multipart/form-data body.", param="file", code="invalid_content_type")
    media_type, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise BadRequest("Expected a multipart/form-data body.", param="file", code="invalid_content_type")
    return boundary


async def receive_upload(
    body: AsyncIterator[bytes],
    content_type: str | None,
    destination: Path,
    max_bytes: int,
    on_file_chunk: Callable[[bytes], None],
) -> UploadedForm:
    """Parse the request body, writing the `file` part to `destination` (removed on any error)."""
    boundary = boundary_of(content_type)  # before the file is opened, so a refusal leaves nothing on disk
    form = UploadedForm()
    state = _PartState()
    too_large = False
    ended = False  # the closing boundary was seen: python-multipart's finalize() does not check it
    with destination.open("wb") as sink:

        def on_part_begin() -> None:
            nonlocal state
            state = _PartState()

        def on_header_field(data: bytes, start: int, end: int) -> None:
            if state.header_value:
                state.headers[state.header_field.lower()] = state.header_value
                state.header_field, state.header_value = b"", b""
            state.header_field += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            state.header_value += data[start:end]

        def on_headers_finished() -> None:
            state.headers[state.header_field.lower()] = state.header_value
            _, options = parse_options_header(state.headers.get(b"content-disposition", b""))
            state.name = options.get(b"name", b"").decode("utf-8", "replace")
            state.is_file = state.name == "file"
            if state.is_file:
                form.filename = options.get(b"filename", b"").decode("utf-8", "replace")

        def on_part_data(data: bytes, start: int, end: int) -> None:
            nonlocal too_large
            chunk = data[start:end]
            if not state.is_file:
                if len(state.value) + len(chunk) > MAX_FIELD_BYTES:
                    raise BadRequest(f"Form field '{state.name}' is too long.", param=state.name)
                state.value.extend(chunk)
                return
            form.file_bytes += len(chunk)
            if form.file_bytes > max_bytes:
                too_large = True
                return
            sink.write(chunk)
            on_file_chunk(chunk)

        def on_part_end() -> None:
            if state.name and not state.is_file:
                form.fields[state.name] = state.value.decode("utf-8", "replace")

        def on_end() -> None:
            nonlocal ended
            ended = True

        parser = MultipartParser(
            boundary,
            {
                "on_part_begin": on_part_begin,
                "on_header_field": on_header_field,
                "on_header_value": on_header_value,
                "on_headers_finished": on_headers_finished,
                "on_part_data": on_part_data,
                "on_part_end": on_part_end,
                "on_end": on_end,
            },
        )
        try:
            async for chunk in body:
                parser.write(chunk)
                if too_large:
                    raise PayloadTooLarge(f"File is larger than the limit of {max_bytes} bytes.", param="file")
            parser.finalize()
            if not ended:
                raise MultipartParseError("the body ends before the closing boundary (was the upload cut off?)")
        except MultipartParseError as exc:
            sink.close()
            os.unlink(destination)
            raise BadRequest(f"Malformed multipart body: {exc}", param="file", code="invalid_multipart") from None
        except BaseException:
            sink.close()
            os.unlink(destination)
            raise
    return form
