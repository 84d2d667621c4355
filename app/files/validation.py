"""Streaming validation of fine-tuning dataset files (JSONL), run while they upload: the framing.

The upload endpoint feeds each received chunk to a `StreamingValidator` as it
writes the chunk to disk, so a file is never held whole in memory: the
validator keeps at most one line (capped at ``max_line_bytes``) plus the first
8 KiB of the file. Every bad line is reported with its line number, a stable
code, the JSON path at fault (``param``) and a message that says what to do.

What a line must be is not decided here: `app.datasets.lines` turns a line into
a JSON object and `app.datasets.schema` checks it as a chat or preference example,
as training does. This module cuts the stream into lines and decides what holds
for the file as a whole:

* One example per line, UTF-8. A UTF-8 byte-order mark at the very start is
  ignored (Windows editors write one); UTF-16/32 files are refused whole.
* Blank (whitespace-only) lines at the end of the file are ignored, so a
  trailing newline or two is fine. A blank line *followed by* an example is a
  ``blank_line`` error: line numbers then always equal example numbers.
* The first line whose format is recognised fixes the file's format (chat or
  preference); a line of the other format is a ``mixed_formats`` error.
* Statistics count only valid examples. ``characters`` is the text the model
  reads: message contents, text parts and tool call names and arguments.
* The first 8 KiB decide whether the file is text at all: a NUL byte (reported on
  the line it is on), a known archive/image signature or mostly control bytes
  (file-level, line 0) make it ``binary_file`` and no line is parsed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.datasets.codes import ErrorCode, Problem
from app.datasets.lines import MAX_JSON_DEPTH, UTF8_BOM, parse_line
from app.datasets.schema import DataFormat, ExampleChecker, ExampleTally

SNIFF_BYTES = 8192
READ_CHUNK_BYTES = 1024 * 1024
# Signatures of files people upload by mistake; all contain bytes no JSONL file starts with.
_BINARY_SIGNATURES = (
    (b"\x1f\x8b", "a gzip archive"),
    (b"PK\x03\x04", "a zip archive (or an Excel/Word document)"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF-", "a PDF document"),
    (b"PAR1", "a Parquet file"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
_JSONL_ADVICE = "upload a UTF-8 JSONL text file, one JSON example per line"
# Bytes that appear in text; whatever translate() leaves after deleting them is a control byte.
_TEXT_BYTES = bytes([*b"\t\n\r\f\b\x1b", *range(0x20, 0x7F), *range(0x80, 0x100)])


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    max_line_bytes: int = 4 * 1024 * 1024
    max_lines: int = 5_000_000
    max_json_depth: int = MAX_JSON_DEPTH
    max_errors_listed: int = 1000


@dataclass(frozen=True, slots=True)
class LineError:
    line: int  # 1-based; 0 for a problem with the file as a whole
    code: str
    message: str
    param: str | None = None  # JSON path at fault, e.g. "messages[2].role"


@dataclass(slots=True)
class ValidationReport:
    ok: bool
    data_format: DataFormat | None
    errors: list[LineError]  # the first `max_errors_listed`, in line order
    error_count: int
    statistics: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class _FileTally:
    examples: int = 0
    messages: int = 0
    assistant_messages: int = 0
    characters: int = 0
    max_example_characters: int = 0
    invalid_lines: int = 0
    blank_lines: int = 0

    def add(self, example: ExampleTally) -> None:
        self.examples += 1
        self.messages += example.messages
        self.assistant_messages += example.assistant_messages
        self.characters += example.characters
        self.max_example_characters = max(self.max_example_characters, example.characters)


def _sniff_binary(window: bytes) -> tuple[int, ErrorCode, str] | None:
    """Decides from the file's first bytes whether it is text: (line, code, message), line 0 for the whole file."""
    if window.startswith((b"\xff\xfe", b"\xfe\xff")):
        return 0, ErrorCode.INVALID_UTF8, "the file is UTF-16 or UTF-32 encoded; save it as UTF-8"
    for signature, what in _BINARY_SIGNATURES:
        if window.startswith(signature):
            return 0, ErrorCode.BINARY_FILE, f"the file is {what}, not JSONL; {_JSONL_ADVICE}"
    nul = window.find(b"\x00")
    if nul >= 0:
        if window[1::2].count(0) > len(window) // 4 or window[0::2].count(0) > len(window) // 4:
            return 0, ErrorCode.INVALID_UTF8, "the file looks UTF-16 encoded; save it as UTF-8"
        # The line the first NUL is on, so a text file with one stray NUL can be fixed where it is.
        line = window.count(b"\n", 0, nul) + 1
        where = f"line {line} holds a NUL byte (byte {nul} of the file)"
        return line, ErrorCode.BINARY_FILE, f"{where}, which no JSONL text has; {_JSONL_ADVICE}"
    if len(window.translate(None, _TEXT_BYTES)) * 10 > len(window):
        return 0, ErrorCode.BINARY_FILE, f"the file is mostly control bytes, so it is binary; {_JSONL_ADVICE}"
    return None


class StreamingValidator:
    """Validates a JSONL dataset fed in chunks of any size; memory stays bounded by the limits."""

    def __init__(self, limits: ValidationLimits | None = None) -> None:
        self.limits = limits or ValidationLimits()
        self._errors: list[LineError] = []
        self._error_count = 0
        self._tally = _FileTally()
        self._format: DataFormat | None = None
        self._format_line = 0  # the line that fixed the file's format
        self._sniff: bytearray | None = bytearray()
        self._binary = False
        self._bytes = 0
        self._newlines = 0
        self._last_byte = b""
        self._line_number = 1  # the line being accumulated
        self._line_size = 0
        self._buffer = bytearray()
        self._too_long = False
        self._saw_example_line = False
        self._blank_run_start = 0  # first line of the pending run of blank lines, 0 when none
        self._blank_run_length = 0
        self._too_many_reported = False
        self._report: ValidationReport | None = None

    def feed(self, chunk: bytes) -> None:
        if self._report is not None:
            raise RuntimeError("feed() after finish()")
        if not chunk:
            return
        self._bytes += len(chunk)
        self._newlines += chunk.count(b"\n")
        self._last_byte = chunk[-1:]
        if self._sniff is not None:
            # The text/binary decision waits for the first 8 KiB, so chunking cannot change it.
            take = SNIFF_BYTES - len(self._sniff)
            self._sniff += chunk[:take]
            if len(self._sniff) < SNIFF_BYTES:
                return
            self._decide_text()
            if not self._binary:
                self._consume(bytes(chunk), take)
            return
        if not self._binary:
            self._consume(bytes(chunk))

    def finish(self) -> ValidationReport:
        if self._report is not None:
            return self._report
        if self._sniff is not None:
            self._decide_text()
        if not self._binary and (self._line_size or self._too_long):
            self._end_line(bytes(self._buffer))
        self._tally.blank_lines += self._blank_run_length  # trailing blank lines are allowed
        if not self._binary and not self._saw_example_line:
            self._add(0, ErrorCode.EMPTY_FILE, None, "the file has no examples; add one JSON object per line")
        self._report = self._build_report()
        return self._report

    def _decide_text(self) -> None:
        assert self._sniff is not None
        window, self._sniff = bytes(self._sniff), None
        verdict = _sniff_binary(window)
        if verdict is not None:
            self._binary = True
            line, code, message = verdict
            self._add(line, code, None, message)
            return
        self._consume(window)

    def _consume(self, data: bytes, position: int = 0) -> None:
        size = len(data)
        while position < size:
            newline = data.find(b"\n", position)
            end = size if newline < 0 else newline
            if newline >= 0 and not self._line_size and end - position <= self.limits.max_line_bytes:
                # The common case: the whole line sits in this chunk, so skip the buffer.
                self._line_size = end - position
                self._end_line(data[position:end])
            else:
                self._extend_line(data, position, end)
                if newline >= 0:
                    self._end_line(bytes(self._buffer))
            if newline < 0:
                return
            position = newline + 1

    def _extend_line(self, data: bytes, start: int, end: int) -> None:
        self._line_size += end - start
        if self._too_long:
            return
        if self._line_size > self.limits.max_line_bytes:
            # Past the limit the line's bytes are dropped; only its length is still counted.
            self._too_long = True
            self._buffer = bytearray()
            return
        self._buffer += memoryview(data)[start:end]

    def _end_line(self, raw: bytes) -> None:
        line, size = self._line_number, self._line_size
        self._line_number += 1
        self._line_size = 0
        if self._buffer:
            self._buffer = bytearray()
        too_long, self._too_long = self._too_long or size > self.limits.max_line_bytes, False
        if line > self.limits.max_lines:
            self._check_extra_line(line, too_long or bool(raw.strip()))
        elif too_long:
            self._flush_blank_run()
            self._saw_example_line = True
            self._line_failed(
                line,
                [
                    Problem(
                        ErrorCode.LINE_TOO_LONG,
                        None,
                        f"is {size} bytes long, over the limit of {self.limits.max_line_bytes} bytes "
                        "per line; shorten or split this example",
                    )
                ],
            )
        else:
            self._check_line(line, raw)

    def _check_extra_line(self, line: int, has_text: bool) -> None:
        if has_text and not self._too_many_reported:
            self._too_many_reported = True
            self._add(
                line,
                ErrorCode.TOO_MANY_LINES,
                None,
                f"line {line}: the file has more than {self.limits.max_lines} lines, the limit; "
                "split it into several files",
            )

    def _check_line(self, line: int, raw: bytes) -> None:
        if line == 1 and raw.startswith(UTF8_BOM):
            raw = raw[len(UTF8_BOM) :]
        if not raw.strip():
            if not self._blank_run_length:
                self._blank_run_start = line
            self._blank_run_length += 1
            return
        self._flush_blank_run()
        self._saw_example_line = True
        parsed = parse_line(raw, self.limits.max_json_depth)
        if isinstance(parsed, Problem):
            self._line_failed(line, [parsed])
            return
        self._check_example(line, parsed)

    def _check_example(self, line: int, example: dict[str, Any]) -> None:
        checker = ExampleChecker()
        line_format = checker.check(example)
        if line_format is not None and self._format is None:
            self._format, self._format_line = line_format, line
        elif line_format is not None and line_format != self._format:
            message = (
                f"is a {line_format} example, but the file holds {self._format} examples "
                f"(line {self._format_line} is one); "
                "use one format per file"
            )
            self._line_failed(line, [Problem(ErrorCode.MIXED_FORMATS, None, message)])
            return
        if checker.problems:
            self._line_failed(line, checker.problems)
            return
        self._tally.add(checker.tally)

    def _flush_blank_run(self) -> None:
        start, length = self._blank_run_start, self._blank_run_length
        if not length:
            return
        self._blank_run_length = 0
        self._tally.blank_lines += length
        self._tally.invalid_lines += length
        for line in range(start, start + min(length, self._room_left())):
            self._add_listed(line, ErrorCode.BLANK_LINE, None, self._blank_message(line))
        self._error_count += length  # a run of millions stays a counter, not a loop

    def _blank_message(self, line: int) -> str:
        return f"line {line} is blank; remove blank lines between examples (only the end may have them)"

    def _line_failed(self, line: int, problems: list[Problem]) -> None:
        self._tally.invalid_lines += 1
        for problem in problems:
            self._add(line, problem.code, problem.param, problem.text(line))

    def _add(self, line: int, code: ErrorCode, param: str | None, message: str) -> None:
        self._error_count += 1
        if self._room_left():
            self._add_listed(line, code, param, message)

    def _add_listed(self, line: int, code: ErrorCode, param: str | None, message: str) -> None:
        self._errors.append(LineError(line=line, code=code, message=message, param=param))

    def _room_left(self) -> int:
        return max(0, self.limits.max_errors_listed - len(self._errors))

    def _build_report(self) -> ValidationReport:
        trailing = 1 if self._bytes and not self._ends_with_newline() else 0
        statistics = {
            "format": self._format,
            "examples": self._tally.examples,
            "messages": self._tally.messages,
            "assistant_messages": self._tally.assistant_messages,
            "characters": self._tally.characters,
            "max_example_characters": self._tally.max_example_characters,
            "bytes": self._bytes,
            "lines": self._newlines + trailing,
            "blank_lines": self._tally.blank_lines,
            "invalid_lines": self._tally.invalid_lines,
        }
        return ValidationReport(
            ok=self._error_count == 0,
            data_format=self._format,
            errors=self._errors,
            error_count=self._error_count,
            statistics=statistics,
        )

    def _ends_with_newline(self) -> bool:
        return self._last_byte == b"\n"


def validate_path(path: str | Path, limits: ValidationLimits | None = None) -> ValidationReport:
    """Validates a file on disk the same way an upload is validated, one chunk at a time."""
    validator = StreamingValidator(limits)
    with open(path, "rb") as stream:
        while chunk := stream.read(READ_CHUNK_BYTES):
            validator.feed(chunk)
    return validator.finish()
