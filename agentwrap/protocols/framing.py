"""Frame an event stream's bytes at its blank lines, without parsing them.

The pass-through tap (tap.py) forwards each upstream event's own bytes, so it
needs the event boundaries before any decoding. `EventFramer` learns the
stream's line end from its first one (LF, CRLF, or a bare CR from old
servers), keeps an unfinished event until the read that ends it (joining its
pieces once), and refuses an event larger than its bound. The caller finds
the separators in what `gather` returns and hands the unfinished tail back
with `keep`. Sans-IO; raises `UpstreamProtocol` only for an oversized event.
"""

from __future__ import annotations

from agentwrap.protocols.sse import event_too_large

__all__ = ["EventFramer"]


class EventFramer:
    """The unfinished event of a stream and the stream's line end; see the module docstring.

    `eol` is b"" until the first line end was seen; `sep` (two of them) is what
    ends an event. `pieces` is the unfinished event, in the reads it came in.
    """

    __slots__ = ("eol", "sep", "pieces", "_pending", "_max")

    def __init__(self, max_event_bytes: int) -> None:
        self.eol = b""
        self.sep = b"\n\n"
        self.pieces: list[bytes] = []
        self._pending = 0  # the size of `pieces`
        self._max = max_event_bytes

    def gather(self, chunk: bytes) -> bytes:
        """`chunk` with the unfinished event before it, or b"" while that event is still
        unfinished (its pieces are joined once, when its end has come)."""
        if not self.eol:
            self._learn(chunk)
        pieces = self.pieces
        if not pieces:
            return chunk
        sep = self.sep
        reach = len(sep) - 1  # a separator across the join starts in the last `reach` bytes held
        tail = b"".join(pieces[-reach:])[-reach:]
        pieces.append(chunk)
        if (tail + chunk[:reach]).find(sep) < 0 and chunk.find(sep) < 0:
            self._add(len(chunk))
            return b""
        self.pieces = []
        return b"".join(pieces)

    def keep(self, data: bytes, pos: int) -> None:
        """`data[pos:]` is the start of an event whose end has not come yet."""
        self.pieces = [data[pos:]]
        self._pending = 0
        self._add(len(data) - pos)

    def take(self) -> bytes:
        """The unfinished event, which is no longer held (the stream has ended)."""
        rest = b"".join(self.pieces)
        self.pieces = []
        return rest

    def _add(self, n: int) -> None:
        self._pending += n
        if self._pending > self._max:
            raise event_too_large(self._max)

    def _learn(self, chunk: bytes) -> None:
        probe = (self.pieces[-1][-1:] if self.pieces else b"") + chunk  # a CR needs the byte after it
        lf, cr = probe.find(b"\n"), probe.find(b"\r")
        if 0 <= cr < len(probe) - 1 and (lf < 0 or cr < lf):
            self.eol = b"\r\n" if probe[cr + 1] == 0x0A else b"\r"
        elif lf >= 0 and (cr < 0 or lf < cr):
            self.eol = b"\n"
        self.sep = (self.eol or b"\n") * 2
