"""Incremental Server-Sent Events parser and encoder, and whether a response is SSE.

Follows the WHATWG HTML "Server-sent events" parsing rules (section 9.2.6),
except that a final event not followed by a blank line is still dispatched by
`finish()`, because many servers end their streams that way.

Sans-IO: bytes in, events out. Raises `UpstreamProtocol` for invalid UTF-8 or
an event larger than `max_event_bytes`; nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from agentwrap.errors import UpstreamProtocol

__all__ = ["MAX_SSE_EVENT_BYTES", "SseEvent", "SseParser", "encode_sse", "event_too_large", "is_sse"]

MAX_SSE_EVENT_BYTES = 16 * 1024 * 1024


def is_sse(headers: Iterable[tuple[bytes, bytes]] | Iterable[tuple[str, str]]) -> bool:
    """Whether response headers (bytes or str pairs, names in any case) say the body is
    an event stream: a `content-type` starting with `text/event-stream`."""
    for name, value in headers:
        if type(name) is bytes:
            if name.lower() == b"content-type" and value.startswith(b"text/event-stream"):
                return True
        elif name.lower() == "content-type" and value.startswith("text/event-stream"):
            return True
    return False


class SseEvent(NamedTuple):
    """One dispatched event. `event` is None when no `event:` field was sent."""

    event: str | None
    data: str
    id: str | None = None


class SseParser:
    """Turn SSE bytes, split anywhere, into `SseEvent`s.

    Raises `UpstreamProtocol` on invalid UTF-8 or an oversized event; the parser
    is unusable afterwards.
    """

    __slots__ = ("max_event_bytes", "_buf", "_skip_lf", "_data", "_size", "_event", "_id", "_started")

    def __init__(self, max_event_bytes: int = MAX_SSE_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        self._buf = bytearray()  # the unfinished last line, still bytes
        self._skip_lf = False  # the previous chunk ended in CR: drop a leading LF
        self._data: list[str] = []
        self._size = 0  # characters held for the current event
        self._event: str | None = None
        self._id: str | None = None  # the last event id persists across events (spec)
        self._started = False

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Parse one chunk; return the events it completes."""
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            # CR, LF and CRLF all end a line. A CR at the very end may be the
            # first half of a CRLF that the next chunk completes.
            self._skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = chunk.rfind(b"\n")
        if end < 0:
            self._buf += chunk
            if len(self._buf) + self._size > self.max_event_bytes:
                raise self._too_big()
            return []
        if self._buf:
            self._buf += chunk[:end]
            block = bytes(self._buf)
        else:
            block = chunk[:end]
        self._buf = bytearray(chunk[end + 1 :])
        # Splitting bytes at LF before decoding is safe: UTF-8 never uses 0x0A
        # inside a multi-byte sequence, so a split character waits in _buf.
        # str.split("\n") (not splitlines) keeps U+2028 and friends inside JSON.
        events = self._lines(_decode(block).split("\n"))
        if len(self._buf) + self._size > self.max_event_bytes:
            raise self._too_big()
        return events

    @property
    def idle(self) -> bool:
        """At an event boundary: nothing of an unfinished line or event is held."""
        return self._started and not self._buf and not self._data and self._event is None and not self._skip_lf

    def finish(self) -> list[SseEvent]:
        """End of input: dispatch a pending event even without its blank line."""
        lines = [_decode(bytes(self._buf))] if self._buf else []
        self._buf = bytearray()
        self._skip_lf = False
        lines.append("")
        return self._lines(lines)

    def _lines(self, lines: list[str]) -> list[SseEvent]:
        out: list[SseEvent] = []
        if not self._started:
            self._started = True
            if lines[0].startswith("\ufeff"):  # one leading BOM is ignored (spec)
                lines[0] = lines[0][1:]
        for line in lines:
            if not line:
                if self._data:
                    out.append(SseEvent(self._event, "\n".join(self._data), self._id))
                    self._data = []
                self._event = None
                self._size = 0
                continue
            if line[0] == ":":
                continue
            field, colon, value = line.partition(":")
            if colon and value[:1] == " ":
                value = value[1:]
            if field == "data":
                self._data.append(value)
                self._size += len(value) + 1
                if self._size > self.max_event_bytes:
                    raise self._too_big()
            elif field == "event":
                self._event = value or None
            elif field == "id":
                if "\0" not in value:
                    self._id = value or None
            # "retry" and unknown fields are ignored: we never reconnect.
        return out

    def _too_big(self) -> UpstreamProtocol:
        return event_too_large(self.max_event_bytes)


def event_too_large(max_event_bytes: int) -> UpstreamProtocol:
    """The error for an event over the bound (the parser's, and the tap's framing's)."""
    return UpstreamProtocol(f"SSE event larger than {max_event_bytes} bytes; the stream is refused")


def _decode(block: bytes) -> str:
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UpstreamProtocol(f"SSE stream is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc


def encode_sse(data: str, event: str | None = None) -> bytes:
    """Encode one event; a multi-line `data` becomes several `data:` lines."""
    head = f"event: {event}\n" if event is not None else ""
    if "\n" in data or "\r" in data:
        lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        body = "".join(f"data: {line}\n" for line in lines)
    else:
        body = f"data: {data}\n"
    return f"{head}{body}\n".encode()
