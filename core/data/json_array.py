"""A JSON array file (`[{...}, {...}]`, as Alpaca and LLaMA-Factory ship datasets) read one
element at a time, in bounded memory.

The whole file is never parsed at once: the text is decoded in chunks and each element is
decoded as soon as it is complete, so memory holds at most one element (up to
`max_line_bytes`, LATHE_MAX_LINE_BYTES) plus one chunk. The same limits as JSON Lines apply:
an element longer than a line may be, or more elements than a file may have lines, ends the
read with an issue. Each element is numbered by the physical line where it starts, so an
error names the line a text editor shows.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import IO, Any

from core.data.limits import ReadLimits
from core.data.report import Code, DataIssue

CHUNK = 1024 * 1024
_WS = " \t\r\n"
_DECODER = json.JSONDecoder()


def starts_array(f: IO[bytes]) -> bool:
    """Whether the (peekable) stream's first non-blank character opens a JSON array."""
    head = f.peek(4096)[:4096] if hasattr(f, "peek") else b""
    return head.removeprefix(codecs.BOM_UTF8).lstrip(_WS.encode())[:1] == b"["


class _Text:
    """The decoded text after the read position, refilled a chunk at a time."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.utf8 = codecs.getincrementaldecoder("utf-8-sig")()
        self.buf = ""
        self.pos = 0
        self.line = 1  # the physical line of buf[pos]
        self.eof = False

    def fill(self) -> None:
        chunk = self.f.read(CHUNK)
        self.eof = not chunk
        self.buf = self.buf[self.pos :] + self.utf8.decode(chunk, final=self.eof)
        self.pos = 0

    def advance(self, end: int) -> None:
        self.line += self.buf.count("\n", self.pos, end)
        self.pos = end

    def skip_blank(self) -> str:
        """The next non-blank character ('' at the end of the file), not consumed."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                if self.buf[self.pos] == "\n":
                    self.line += 1
                self.pos += 1
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos : self.pos + 1]
            self.fill()


def read_json_array(f: IO[bytes], limits: ReadLimits) -> Iterator[tuple[int, Any] | DataIssue]:
    """(line, element) per array element, or the issue that ends the read."""
    text = _Text(f)
    try:
        text.skip_blank()
        text.advance(text.pos + 1)  # the '[' starts_array saw
        first = True
        count = 0
        while True:
            c = text.skip_blank()
            if c == "]" and first:
                text.advance(text.pos + 1)
                break
            if not first:
                if c == "]":
                    text.advance(text.pos + 1)
                    break
                if c != ",":
                    yield _invalid(text.line, f"expected ',' or ']' between elements, got {c!r}")
                    return
                text.advance(text.pos + 1)
                text.skip_blank()
            first = False
            count += 1
            if count > limits.max_lines:
                yield _too_many(text.line, limits)
                return
            element = _element(text, limits)
            if isinstance(element, DataIssue):
                yield element
                return
            yield element
        if text.skip_blank():
            yield _invalid(text.line, "unexpected text after the closing ']'")
    except UnicodeDecodeError as e:
        yield DataIssue(
            text.line, None, f"invalid UTF-8: {e.reason}; files must be UTF-8", Code.INVALID_UTF8
        )


def _element(text: _Text, limits: ReadLimits) -> tuple[int, Any] | DataIssue:
    line = text.line
    while True:
        try:
            value, end = _DECODER.raw_decode(text.buf, text.pos)
            if end < len(text.buf) or text.eof:  # a number might go on in the next chunk
                if end - text.pos > limits.max_line_bytes:
                    return _too_long(line, limits)
                text.advance(end)
                return line, value
        except ValueError as e:
            if text.eof:
                return _invalid(line, f"invalid JSON in this element: {e}")
        except RecursionError:
            return _invalid(line, "the element nests too deeply")
        if len(text.buf) - text.pos > limits.max_line_bytes:
            return _too_long(line, limits)
        text.fill()


def _invalid(line: int, message: str) -> DataIssue:
    return DataIssue(line, None, f"{message}; reading stopped here", Code.INVALID_JSON)


def _too_long(line: int, limits: ReadLimits) -> DataIssue:
    return DataIssue(
        line,
        None,
        f"an array element is longer than {limits.max_line_bytes} bytes "
        "(LATHE_MAX_LINE_BYTES); reading stopped here",
        Code.LINE_TOO_LONG,
    )


def _too_many(line: int, limits: ReadLimits) -> DataIssue:
    return DataIssue(
        line,
        None,
        f"the array has more than {limits.max_lines} elements (LATHE_MAX_DATASET_LINES); "
        "reading stopped here",
        Code.TOO_MANY_LINES,
    )
