"""An upstream connection and the response read from it: h11 on asyncio streams.

`Conn` is one socket with its h11 state and an idle-read watchdog;
`UpstreamResponse` a response head whose body streams as it arrives (chunked
bodies decoded by `chunked.ChunkedDecoder`). Socket, TLS, asyncio and h11
exceptions become `UpstreamTimeout` or `UpstreamProtocol` here
(`upstream_error`, `Translating`), so nothing above sees them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import h11

from agentwrap.backends.chunked import ChunkedDecoder
from agentwrap.errors import UpstreamError, UpstreamProtocol, UpstreamTimeout

if TYPE_CHECKING:
    from agentwrap.backends.http import HttpTransport

__all__ = ["Conn", "UpstreamResponse", "NoResponse", "Translating", "upstream_error", "is_chunked",
           "FOREIGN_ERRORS", "READ_CHUNK_BYTES", "MAX_RESPONSE_HEAD_BYTES"]

READ_CHUNK_BYTES = 64 * 1024
MAX_RESPONSE_HEAD_BYTES = 64 * 1024
# TimeoutError, ConnectionError, ssl.SSLError, socket.gaierror are OSErrors;
# asyncio.IncompleteReadError is an EOFError.
FOREIGN_ERRORS = (OSError, EOFError, h11.ProtocolError, asyncio.LimitOverrunError)


class NoResponse(ConnectionError):
    """A pooled connection failed before the request was fully written (or, for an
    idempotent method, before a single response byte arrived): the upstream cannot have
    acted on it (or may act twice harmlessly), so it is sent again on a fresh connection."""


def upstream_error(exc: BaseException, where: str, phase: str, timeout_s: float, conn: Conn | None) -> UpstreamError:
    """Translate a socket, TLS, asyncio or h11 exception into an UpstreamError.

    `phase` is "connect", "request" (sending it, awaiting the head) or "body".
    """
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout({
            "connect": f"connecting to {where} timed out after {timeout_s:g} s",
            "request": f"{where} sent no response within {timeout_s:g} s",
        }.get(phase, f"{where} sent nothing for {timeout_s:g} s in the middle of the response body"))
    if isinstance(exc, ssl.SSLError):
        return UpstreamProtocol(f"TLS with {where} failed: {getattr(exc, 'verify_message', None) or exc.reason or exc}")
    if isinstance(exc, socket.gaierror):
        return UpstreamProtocol(f"cannot connect to {where}: cannot resolve the host ({exc.strerror})")
    if isinstance(exc, h11.LocalProtocolError):
        return UpstreamProtocol(f"cannot send the request to {where}: {exc}")
    if isinstance(exc, OSError) and exc.errno:
        reason = os.strerror(exc.errno)
    else:
        reason = "the connection was closed" if isinstance(exc, EOFError) else str(exc)
    if phase == "connect":
        return UpstreamProtocol(f"cannot connect to {where}: {reason}")
    eof = conn is not None and conn.eof
    if isinstance(exc, h11.ProtocolError) and not eof:
        return UpstreamProtocol(f"{where} sent malformed HTTP: {exc}")
    received = phase == "body" or (conn is not None and conn.received)
    message = f"{where} closed the connection {'mid-response' if received else 'before responding'}"
    return UpstreamProtocol(f"{message} ({reason})" if reason and not eof else message)


class Translating:
    """Context manager applying `upstream_error` to what escapes it."""

    __slots__ = ("where", "phase", "timeout_s", "conn")

    def __init__(self, where: str) -> None:
        self.where, self.phase, self.timeout_s, self.conn = where, "request", 0.0, None

    def __enter__(self) -> Translating:
        return self

    def __exit__(self, typ: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None and isinstance(exc, FOREIGN_ERRORS):
            raise upstream_error(exc, self.where, self.phase, self.timeout_s, self.conn) from exc


class Conn:
    """One socket, its h11 state, and a cheap idle-read watchdog."""

    __slots__ = ("reader", "writer", "h11", "key", "received", "eof", "_loop", "_deadline", "_timer", "_reading")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: tuple[object, ...]) -> None:
        self.reader, self.writer, self.key = reader, writer, key
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_RESPONSE_HEAD_BYTES)
        self.received = self.eof = False  # of the current response
        self._loop = asyncio.get_running_loop()
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._reading = False

    def reusable(self) -> bool:
        # Bytes or EOF on an idle connection mean the server gave up on it (a
        # 408, a close). StreamReader has no public "bytes pending" query; its
        # _buffer has been there since Python 3.4.
        reader = self.reader
        return not (self.writer.transport.is_closing() or reader.at_eof() or reader._buffer
                    or reader.exception() is not None or self.h11.trailing_data[0])

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # abort(), not close(): HTTP/1.1 framing needs no TLS close_notify, and a
        # graceful TLS shutdown can wait 30 s on a peer that does not answer.
        self.writer.transport.abort()

    async def read_body(self, idle_s: float) -> bytes:
        """Read the next chunk; TimeoutError if the upstream stays silent `idle_s` meanwhile."""
        # One timer per connection, re-armed only when it fires: asyncio.timeout()
        # per chunk costs ~4 us, as much as h11 parsing the chunk. Time the
        # consumer spends between reads does not count.
        self._deadline = self._loop.time() + idle_s
        if self._timer is None:
            self._timer = self._loop.call_at(self._deadline, self._watchdog)
        self._reading = True
        try:
            return await self.reader.read(READ_CHUNK_BYTES)
        finally:
            self._reading = False

    def _watchdog(self) -> None:
        self._timer = None
        if not self._reading:
            return
        if self._deadline - self._loop.time() > 0.001:
            self._timer = self._loop.call_at(self._deadline, self._watchdog)
        else:
            self.reader.set_exception(TimeoutError())  # wakes the pending read()


class UpstreamResponse:
    """A response head; the body streams from the socket as it arrives.

    Iterating raises UpstreamProtocol or UpstreamTimeout. Once the body has been
    read to its end the connection goes back to the pool by itself; `aclose()`
    before that closes the socket.
    """

    __slots__ = ("status", "reason", "headers", "_conn", "_pool", "_where", "_idle_s", "_done", "_pending_end", "_chunked", "_seeded")

    def __init__(self, head: h11.Response, conn: Conn, pool: HttpTransport, where: str, idle_s: float,
                 chunked: bool = False) -> None:
        self.status: int = head.status_code
        self.reason: bytes = head.reason
        self.headers: list[tuple[bytes, bytes]] = head.headers.raw_items()  # names as received
        self._conn: Conn | None = conn
        self._pool, self._where, self._idle_s, self._done = pool, where, idle_s, False
        self._pending_end = False  # EndOfMessage seen while returning the last pieces
        # Chunked bodies are decoded here, not by h11 (see chunked.py); h11 keeps
        # parsing heads, and the connection gets a fresh h11 state when pooled.
        self._chunked: ChunkedDecoder | None = ChunkedDecoder() if chunked else None
        self._seeded = False  # the body bytes h11 buffered with the head were fed

    def __repr__(self) -> str:
        return f"<UpstreamResponse {self.status} from {self._where}>"

    def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as it arrives (de-chunked): one piece per socket read or chunk."""
        return self

    def __aiter__(self) -> UpstreamResponse:
        return self

    async def __anext__(self) -> bytes:
        conn = self._conn
        if conn is None:
            if self._done:
                raise StopAsyncIteration
            raise RuntimeError("the response was closed before its body was read")
        if self._pending_end:
            self._conn, self._done = None, True
            self._pool._release(conn)
            raise StopAsyncIteration
        if self._chunked is not None:
            return await self._next_chunked(conn)
        h = conn.h11
        # Everything one socket read produced goes out as one piece: upstream SSE
        # arrives one chunk per event, and passing each on alone costs a write
        # syscall per event downstream. Nothing waits for more data to join.
        pieces: list[bytes] = []
        try:
            while True:
                event = h.next_event()
                kind = type(event)
                if kind is h11.Data:
                    if event.data:
                        pieces.append(event.data)
                elif event is h11.NEED_DATA:
                    if pieces:
                        return pieces[0] if len(pieces) == 1 else b"".join(pieces)
                    data = await conn.read_body(self._idle_s)
                    conn.eof = not data
                    h.receive_data(data)
                elif kind is h11.EndOfMessage:
                    if pieces:
                        self._pending_end = True
                        return pieces[0] if len(pieces) == 1 else b"".join(pieces)
                    break
                else:
                    raise h11.RemoteProtocolError(f"unexpected {event!r} in the response body")
        except BaseException as exc:  # cancellation included: the socket must not leak
            raise self._failed(conn, exc) from exc
        self._conn, self._done = None, True
        self._pool._release(conn)
        raise StopAsyncIteration

    async def _next_chunked(self, conn: Conn) -> bytes:
        dec = self._chunked
        assert dec is not None
        try:
            if dec.done:
                self._finish_chunked(conn)
                raise StopAsyncIteration
            pieces: list[bytes] = []
            if not self._seeded:  # body bytes h11 read along with the head
                self._seeded = True
                buffered = conn.h11.trailing_data[0]
                if buffered:
                    pieces = dec.feed(buffered)
            while not pieces and not dec.done:
                data = await conn.read_body(self._idle_s)
                if not data:
                    conn.eof = True
                    raise UpstreamProtocol(f"{self._where} closed the connection mid-response")
                pieces = dec.feed(data)
            if not pieces:
                self._finish_chunked(conn)
                raise StopAsyncIteration
            return pieces[0] if len(pieces) == 1 else b"".join(pieces)
        except StopAsyncIteration:
            raise
        except BaseException as exc:  # cancellation included: the socket must not leak
            if isinstance(exc, UpstreamProtocol) and str(exc).startswith("malformed chunked body"):
                exc = UpstreamProtocol(f"{self._where} sent malformed HTTP: {exc}")
            raise self._failed(conn, exc) from exc

    def _failed(self, conn: Conn, exc: BaseException) -> BaseException:
        """Drop the connection after a body read failed; the exception the caller should see."""
        closed_meanwhile = self._conn is None  # by aclose() from another task
        self._conn = None
        self._pool._discard(conn)
        if closed_meanwhile and not isinstance(exc, asyncio.CancelledError):
            return RuntimeError("the response was closed before its body was read")
        if isinstance(exc, FOREIGN_ERRORS):
            return upstream_error(exc, self._where, "body", self._idle_s, conn)
        return exc

    def _finish_chunked(self, conn: Conn) -> None:
        self._conn, self._done = None, True
        dec = self._chunked
        assert dec is not None
        if dec.leftover or not self._keep_alive:
            self._pool._discard(conn)
        else:
            self._pool._release(conn, fresh=True)

    @property
    def _keep_alive(self) -> bool:
        for name, value in self.headers:
            if name.lower() == b"connection" and b"close" in value.lower():
                return False
        return True

    async def aread(self) -> bytes:
        """The whole body. Raises UpstreamProtocol or UpstreamTimeout."""
        return b"".join([chunk async for chunk in self])

    async def aclose(self) -> None:
        """Pool the connection if the body is complete already, else close the socket."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._pending_end:
            self._done = True
            self._pool._release(conn)
            return
        if self._chunked is not None:
            if self._chunked.done:
                self._finish_chunked(conn)
            else:
                self._pool._discard(conn)
            return
        try:  # what is buffered may finish the body already (204, HEAD, short bodies)
            while (event := conn.h11.next_event()) is not h11.NEED_DATA:
                if type(event) is h11.EndOfMessage:
                    self._done = True
                    self._pool._release(conn)
                    return
        except h11.ProtocolError:
            pass
        self._pool._discard(conn)


def is_chunked(head: h11.Response) -> bool:
    if head.status_code < 200 or head.status_code in (204, 304):
        return False
    for name, value in head.headers:  # h11 lowercases names
        if name == b"transfer-encoding":
            return value.lower().rstrip().endswith(b"chunked")
    return False
