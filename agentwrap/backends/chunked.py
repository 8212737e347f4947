"""Decoding an HTTP/1.1 chunked body (RFC 9112 section 7.1), sans-IO.

The upstream transport parses the response head with h11 and then decodes
chunked bodies here: h11 costs ~5 us per chunk, and an upstream SSE stream is
one chunk per event, so on the streaming hot path this loop (a `find` and an
`int` per chunk) is what keeps the proxy near the direct rate.
"""

from __future__ import annotations

from agentwrap.errors import UpstreamProtocol

__all__ = ["ChunkedDecoder", "MAX_CHUNK_LINE_BYTES"]

MAX_CHUNK_LINE_BYTES = 4096  # a chunk-size line or a trailer line

_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class ChunkedDecoder:
    """`feed(bytes) -> list of payload pieces`; `done` once the last chunk and trailers are read.

    Raises UpstreamProtocol on malformed framing. Bytes after the end of the
    body are kept in `leftover`.
    """

    __slots__ = ("_state", "_remaining", "_buf", "leftover")

    def __init__(self) -> None:
        self._state = _SIZE
        self._remaining = 0
        self._buf = b""
        self.leftover = b""

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> list[bytes]:
        if self._state == _DONE:
            self.leftover += data
            return []
        buf = self._buf + data if self._buf else data
        end_of_buf = len(buf)
        pos = 0
        out: list[bytes] = []
        state, remaining = self._state, self._remaining
        find = buf.find
        while pos < end_of_buf:
            if state == _SIZE:
                # The common case first: a plain size line and the whole chunk in the buffer.
                eol = find(b"\r\n", pos)
                if eol > pos:
                    line = buf[pos:eol]
                    if line.isalnum():
                        try:
                            size = int(line, 16)
                        except ValueError:
                            raise UpstreamProtocol(f"malformed chunked body: bad chunk size {line[:20]!r}") from None
                        start = eol + 2
                        stop = start + size
                        if size and stop + 2 <= end_of_buf:
                            if buf[stop : stop + 2] != b"\r\n":
                                raise UpstreamProtocol("malformed chunked body: chunk data not followed by CRLF")
                            out.append(buf[start:stop])
                            pos = stop + 2
                            continue
            if state == _DATA:
                avail = end_of_buf - pos
                if avail < remaining:
                    out.append(buf[pos:] if pos else buf)
                    remaining -= avail
                    pos = end_of_buf
                    break
                out.append(buf[pos : pos + remaining])
                pos += remaining
                remaining = 0
                state = _DATA_END
            elif state == _DATA_END:
                if end_of_buf - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise UpstreamProtocol("malformed chunked body: chunk data not followed by CRLF")
                pos += 2
                state = _SIZE
            elif state == _SIZE:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    if end_of_buf - pos > MAX_CHUNK_LINE_BYTES:
                        raise UpstreamProtocol("malformed chunked body: chunk-size line too long")
                    break
                line = buf[pos:eol]
                semi = line.find(b";")
                if semi >= 0:
                    line = line[:semi]
                line = line.rstrip(b" \t")
                if not line.isalnum():  # rules out "+", "-", "_" and blanks that int() would accept
                    raise UpstreamProtocol(f"malformed chunked body: bad chunk size {line[:20]!r}")
                try:
                    remaining = int(line, 16)
                except ValueError:
                    raise UpstreamProtocol(f"malformed chunked body: bad chunk size {line[:20]!r}") from None
                pos = eol + 2
                state = _DATA if remaining else _TRAILER
            elif state == _TRAILER:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    if end_of_buf - pos > MAX_CHUNK_LINE_BYTES:
                        raise UpstreamProtocol("malformed chunked body: trailer line too long")
                    break
                if eol == pos:
                    pos += 2
                    state = _DONE
                    self.leftover = buf[pos:]
                    pos = end_of_buf
                    break
                pos = eol + 2  # a trailer field: not forwarded
        self._state, self._remaining = state, remaining
        self._buf = b"" if state == _DONE or pos >= end_of_buf else buf[pos:]
        return out
