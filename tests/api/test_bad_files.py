"""Uploads that must be refused: the bad-file corpus and malformed forms, each a 400 that stores nothing.

They go to the strict API, which runs with the corpus' limits (CORPUS_LIMITS), so
the too-long-line and too-many-lines files stay a few hundred kilobytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import func, select

from app.files.tables import File
from app.users.tables import Quota
from tests.api.conftest import STRICT_UPLOAD_BYTES, listing, sdk
from tests.files.corpus import BadFile, bad_file_corpus, good_chat_file

CORPUS = bad_file_corpus()
BOUNDARY = "api-test-boundary-7d1f"


def test_the_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 25
    assert len({bad.name for bad in CORPUS}) == len(CORPUS)


async def _stored_files(sessionmaker) -> int:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(File)) or 0)


@pytest.fixture
async def uploader(strict_api, make_user):  # type: ignore[no-untyped-def]
    user = await make_user("uploader@acme.example.com")
    return user, sdk(strict_api, user.key)


async def test_every_corpus_file_is_refused_with_every_bad_line(uploader, settings, sessionmaker) -> None:  # type: ignore[no-untyped-def]
    _, client = uploader
    before = listing(settings.datasets_path)
    mismatches: dict[str, Any] = {}
    for bad in CORPUS:
        try:
            client.files.create(file=(f"{bad.name}.jsonl", bad.content), purpose="fine-tune")
        except openai.BadRequestError as error:
            problem = _mismatch(bad, error)
        else:
            problem = "accepted"
        if problem:
            mismatches[bad.name] = problem
    assert mismatches == {}
    assert listing(settings.datasets_path) == before
    assert await _stored_files(sessionmaker) == 0


def _mismatch(bad: BadFile, error: openai.BadRequestError) -> Any:
    """What differs from the corpus' expectation, or None."""
    body = error.body
    assert isinstance(body, dict)
    reported = [(item["line"], item["code"]) for item in body["details"]["errors"]]
    expected_code = bad.expected[0][1] if len(bad.expected) == 1 else "invalid_file"
    if reported != bad.expected or body["code"] != expected_code or body["param"] != "file":
        return {"reported": reported, "code": body["code"], "expected": bad.expected}
    if body["details"]["error_count"] != len(bad.expected) or not all(e["message"] for e in body["details"]["errors"]):
        return {"error_count": body["details"]["error_count"]}
    return None


def form(*parts: tuple[bytes, bytes]) -> tuple[bytes, dict[str, str]]:
    """A multipart body built byte by byte, so names no client library would send can be sent."""
    delimiter = b"--" + BOUNDARY.encode()
    body = b"".join(
        delimiter + b"\r\nContent-Disposition: form-data; " + disposition + b"\r\n\r\n" + content + b"\r\n"
        for disposition, content in parts
    )
    return body + delimiter + b"--\r\n", {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


PURPOSE = (b'name="purpose"', b"fine-tune")
GOOD = good_chat_file()


def file_part(filename: bytes | None) -> tuple[bytes, bytes]:
    disposition = b'name="file"' + (b'; filename="' + filename + b'"' if filename is not None else b"")
    return disposition, GOOD


MALFORMED_FORMS = {
    "wrong_purpose": (form((b'name="purpose"', b"assistants"), file_part(b"a.jsonl")), "unsupported_purpose",
                      "purpose"),
    "missing_purpose": (form(file_part(b"a.jsonl")), "missing_purpose", "purpose"),
    "missing_file_part": (form(PURPOSE), "missing_file", "file"),
    "path_traversal": (form(PURPOSE, file_part(b"../../etc/cron.d/evil.jsonl")), "invalid_filename", "file"),
    "windows_traversal": (form(PURPOSE, file_part(b"..\\..\\boot.jsonl")), "invalid_filename", "file"),
    "absolute_path": (form(PURPOSE, file_part(b"/etc/passwd")), "invalid_filename", "file"),
    "dot_dot": (form(PURPOSE, file_part(b"..")), "invalid_filename", "file"),
    "nul_in_name": (form(PURPOSE, file_part(b"train\x00.jsonl")), "invalid_filename", "file"),
    "control_char_in_name": (form(PURPOSE, file_part(b"train\x07.jsonl")), "invalid_filename", "file"),
    "empty_name": (form(PURPOSE, file_part(b"")), "invalid_filename", "file"),
    "no_filename_attribute": (form(PURPOSE, file_part(None)), "invalid_filename", "file"),
    "not_multipart": ((b'{"purpose": "fine-tune"}', {"Content-Type": "application/json"}), "invalid_content_type",
                      "file"),
    "cut_in_a_header": ((b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data; name=",
                         form()[1]), "invalid_multipart", "file"),
    # Whole lines of a good file, then no closing boundary: a cut-off upload must not pass as complete.
    "no_closing_boundary": ((form(PURPOSE, file_part(b"a.jsonl"))[0].rsplit(b"\r\n--", 1)[0], form()[1]),
                            "invalid_multipart", "file"),
}  # fmt: skip


async def test_malformed_forms_are_400_with_their_code_and_store_nothing(  # type: ignore[no-untyped-def]
    strict_api, uploader, settings, sessionmaker
) -> None:
    user, _ = uploader
    before = listing(settings.datasets_path)
    answers = {}
    with httpx.Client(base_url=strict_api, headers=user.headers, timeout=30) as http:
        for name, ((body, headers), _, _) in MALFORMED_FORMS.items():
            response = http.post("/v1/files", content=body, headers=headers)
            error = response.json().get("error", {})
            answers[name] = (response.status_code, error.get("code"), error.get("param"))
        expected = {name: (400, code, param) for name, (_, code, param) in MALFORMED_FORMS.items()}
        assert answers == expected
        assert listing(settings.datasets_path) == before
        assert await _stored_files(sessionmaker) == 0
        # The same form with a plain name is accepted: the refusals above are about the names alone.
        body, headers = form(PURPOSE, file_part("train (1) é.jsonl".encode()))
        accepted = http.post("/v1/files", content=body, headers=headers)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["filename"] == "train (1) é.jsonl"
        assert len(listing(settings.datasets_path) - before) == 1


async def test_streamed_upload_without_length_is_cut_off_at_the_limit(  # type: ignore[no-untyped-def]
    strict_api, uploader, settings, sessionmaker
) -> None:
    """No Content-Length to refuse up front: the API counts while it streams and stops past the limit."""
    user, _ = uploader
    head, headers = form(PURPOSE, file_part(b"big.jsonl"))
    opening, closing = head.split(GOOD)
    received = []

    def chunked() -> Iterator[bytes]:
        yield opening
        for _ in range(STRICT_UPLOAD_BYTES // len(GOOD) + 64):
            received.append(len(GOOD))
            yield GOOD
        yield closing

    before = listing(settings.datasets_path)
    response = httpx.post(f"{strict_api}/v1/files", content=chunked(), headers={**user.headers, **headers}, timeout=30)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "file_too_large"
    assert listing(settings.datasets_path) == before
    assert await _stored_files(sessionmaker) == 0


async def test_upload_over_the_storage_quota_is_429_and_stores_nothing(  # type: ignore[no-untyped-def]
    uploader, settings, sessionmaker
) -> None:
    user, client = uploader
    async with sessionmaker() as session:
        session.add(Quota(user_id=user.id, storage_bytes=len(GOOD) + 10))
        await session.commit()
    client.files.create(file=("first.jsonl", GOOD), purpose="fine-tune")  # fits
    before = listing(settings.datasets_path)
    with pytest.raises(openai.RateLimitError) as over:
        client.files.create(file=("second.jsonl", GOOD), purpose="fine-tune")
    assert over.value.code == "storage_bytes"
    assert listing(settings.datasets_path) == before
    assert await _stored_files(sessionmaker) == 1
