"""Incremental decoders for the backends' stream framing: SSE events and NDJSON lines.

Pure (no I/O, no clock); they work on `str` chunks of any size, including single
characters. Each exposes `feed(text)` and `finish()` in the style of httpx's
`LineDecoder`, and its total work is linear in the text it is fed: no buffer is ever
re-scanned or re-joined on later chunks. What the events and lines hold is each
protocol's business (its backend reads them); the plans inside the model's text are
parsed later, by `planner.stream`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# SSE lines end only at CRLF, CR or LF (str.splitlines() would also split on \v, \f,
# \x1c-\x1e, \x85, \u2028 and \u2029, which may legally appear inside data).
_SSE_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched server-sent event."""

    event: str = "message"
    data: str = ""
    """The event's data lines joined by "\\n"."""
    id: str | None = None
    """The last event id seen on the stream so far (it persists, as the SSE spec says)."""


class _LineSplitter:
    """Splits a stream of str chunks into lines ended by CRLF, CR or LF.

    A CR that ends a chunk is taken as a line end at once; an LF opening the next
    chunk is then swallowed, so a CRLF split across chunks is still one line end.
    """

    def __init__(self) -> None:
        self._partial: list[str] = []  # pieces of the unterminated line, joined once
        self._after_cr = False

    def feed(self, text: str) -> list[str]:
        if self._after_cr and text:
            self._after_cr = False
            if text[0] == "\n":
                text = text[1:]
        lines: list[str] = []
        start = 0
        for match in _SSE_LINE_END.finditer(text):
            end = match.start()
            if match.end() == len(text) and match.group() == "\r":
                self._after_cr = True
            if self._partial:
                self._partial.append(text[start:end])
                lines.append("".join(self._partial))
                self._partial.clear()
            else:
                lines.append(text[start:end])
            start = match.end()
        if start < len(text):
            self._partial.append(text[start:])
        return lines

    def finish(self) -> str | None:
        """The unterminated last line, if any."""
        self._after_cr = False
        if not self._partial:
            return None
        line = "".join(self._partial)
        self._partial.clear()
        return line


class SSEDecoder:
    """Decodes a text/event-stream into `SSEEvent`s (WHATWG server-sent events rules).

    Fields `data`, `event` and `id` are kept (`retry` and unknown fields are ignored);
    lines starting with ":" are comments; one space after the colon is stripped; a
    blank line dispatches the event if it had at least one data line. An event not
    closed by a blank line when the stream ends is discarded, as the spec says.
    """

    def __init__(self) -> None:
        self._lines = _LineSplitter()
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None

    def feed(self, text: str) -> list[SSEEvent]:
        if not self._started and text:
            self._started = True
            if text[0] == "\ufeff":  # a byte-order mark may open the stream
                text = text[1:]
        events: list[SSEEvent] = []
        for line in self._lines.feed(text):
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def finish(self) -> list[SSEEvent]:
        # The unterminated last line can still be a field, but with no blank line
        # after it the pending event is never dispatched.
        tail = self._lines.finish()
        if tail is not None:
            self._line(tail)
        self._data.clear()
        self._event = ""
        return []

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = SSEEvent(
            event=self._event or "message", data="\n".join(self._data), id=self._last_id
        )
        self._data.clear()
        self._event = ""
        return event


class NDJSONDecoder:
    """Splits newline-delimited JSON (Ollama's stream) into complete non-blank lines.

    Lines end at LF; a CR before the LF is dropped. The lines are not parsed here.
    `finish()` returns the last line if the stream ended without a newline.
    """

    def __init__(self) -> None:
        self._partial: list[str] = []

    def feed(self, text: str) -> list[str]:
        lines: list[str] = []
        start = 0
        while True:
            end = text.find("\n", start)
            if end < 0:
                break
            if self._partial:
                self._partial.append(text[start:end])
                line = "".join(self._partial)
                self._partial.clear()
            else:
                line = text[start:end]
            self._keep(line, lines)
            start = end + 1
        if start < len(text):
            self._partial.append(text[start:])
        return lines

    def finish(self) -> list[str]:
        lines: list[str] = []
        if self._partial:
            self._keep("".join(self._partial), lines)
            self._partial.clear()
        return lines

    @staticmethod
    def _keep(line: str, lines: list[str]) -> None:
        if line.endswith("\r"):
            line = line[:-1]
        if line.strip():
            lines.append(line)
