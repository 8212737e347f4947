"""The proxy's listening side: each agent connection's protocol, its requests, and their bounds.

Any local process can connect to the proxy, with the session secret or without,
so what a connection may hold is bounded (docs/reliability.md, "Timeouts and
limits"):

- **Time to a request head.** A new connection must bring a whole request head
  within `HEAD_TIMEOUT_SECONDS`. A kept-alive one may wait
  `IDLE_TIMEOUT_SECONDS` for its next request's first byte (longer than the
  agents' own pool timeouts, so they close first), then has
  `HEAD_TIMEOUT_SECONDS` for the rest of the head. Past either, it is closed
  without an answer. No inbound timeout runs while agentwrap answers: a model
  may think for minutes before its first byte.
- **Size of a head.** `MAX_HEAD_BYTES`, however it arrives: h11 bounds only a
  head still incomplete in its buffer, and one read may bring a larger one
  whole. Over it: 431.
- **Number of connections.** At most `connection_limit()` stay open (a share of
  the descriptor limit). One more closes the oldest connection that has not
  sent a whole request yet, else the oldest idle one, so a flood never holds the
  descriptors the agent's next connection needs; a connection whose request is
  being answered is never closed.
- **The agent leaving.** The transport says so: the connection is lost, or the
  agent ends its side, while a streamed answer is being sent (an agent never
  half-closes while it waits for its answer; nginx reads it the same way). The
  task sending the stream is then cancelled wherever it waits, so nothing more
  is written, the relay closes the upstream at once (the provider stops
  generating) and the flow records `agent_left`. Nothing is tested per chunk.
"""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Callable, Coroutine
from typing import Any

import h11

from agentwrap.proxy.flow import ProxyResponse

__all__ = [
    "AgentConnection", "OpenConnections", "TooLarge", "connection_limit", "read_request",
    "MAX_REQUEST_BYTES", "MAX_HEAD_BYTES", "HEAD_TIMEOUT_SECONDS", "IDLE_TIMEOUT_SECONDS", "MAX_INBOUND_CONNECTIONS",
]

MAX_REQUEST_BYTES = 256 * 1024 * 1024  # agents resend whole conversations; images make them large
MAX_HEAD_BYTES = 64 * 1024  # request line and headers; agents send 1-4 KB
HEAD_TIMEOUT_SECONDS = 30.0  # a new connection (or a kept-alive one's first byte) -> a whole head
IDLE_TIMEOUT_SECONDS = 120.0  # between requests; above Node's undici (4 s) and reqwest/hyper (90 s)
MAX_INBOUND_CONNECTIONS = 1024  # and at most a quarter of RLIMIT_NOFILE
READ_CHUNK_BYTES = 256 * 1024

Request = tuple[bytes, bytes, list[tuple[bytes, bytes]], bytes]


def connection_limit() -> int:
    """How many inbound connections stay open: a quarter of the soft descriptor limit (the
    rest is for upstream connections, capture and the agent's pipes), at most
    MAX_INBOUND_CONNECTIONS and at least 8."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_INBOUND_CONNECTIONS
    return max(8, min(MAX_INBOUND_CONNECTIONS, soft // 4))


class OpenConnections:
    """The inbound connections open now, oldest first; `limit` of them at most, unless every
    one is being answered (the agent's own requests are never refused)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[AgentConnection, None] = {}

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, conn: AgentConnection) -> None:
        """Count `conn` in; at the limit, close the oldest that sent no whole request, else the oldest idle one."""
        open_ = self._open
        if len(open_) >= self.limit:
            victim = next((c for c in open_ if not c.served), None)
            if victim is None:
                victim = next((c for c in open_ if not c.busy), None)
            if victim is not None:
                del open_[victim]  # now: its connection_lost comes a loop turn later
                victim.drop()
        open_[conn] = None

    def discard(self, conn: AgentConnection) -> None:
        self._open.pop(conn, None)


class AgentConnection(asyncio.StreamReaderProtocol):
    """One inbound connection: asyncio's stream protocol, plus what the server needs to bound
    it (`served`, `busy`) and to learn, without polling, that the agent left a stream.

    `serve(conn, reader, writer)` is the coroutine that serves it (in `task`)."""

    def __init__(self, open_connections: OpenConnections,
                 serve: Callable[[AgentConnection, asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]],
                 loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(asyncio.StreamReader(limit=READ_CHUNK_BYTES, loop=loop), lambda r, w: serve(self, r, w), loop=loop)
        self.open_connections = open_connections
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task | None = None  # serving this connection
        self.served = False  # a whole request has arrived on it
        self.busy = False  # a request is being answered
        self.streaming: ProxyResponse | None = None  # whose streamed body is being sent

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.open_connections.admit(self)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.open_connections.discard(self)
        self._left()

    def eof_received(self) -> bool | None:
        keep_open = super().eof_received()
        if self.streaming is None:
            return keep_open  # an agent may end its side after its last request: h11 sees the end
        self._left()
        return False  # the transport closes

    def drop(self) -> None:
        """Close the connection now (over the limit): its task reads the end and returns."""
        if self.transport is not None:
            self.transport.abort()

    def _left(self) -> None:
        """The agent went away: if a stream was being sent, record it and stop its task."""
        response, self.streaming = self.streaming, None
        if response is None:
            return
        if response.on_agent_left is not None:
            response.on_agent_left()
        if self.task is not None:
            # The send loop gets CancelledError at its next await (an upstream read or a drain),
            # before it writes again; the relay's `finally` closes the upstream.
            self.task.cancel()


class TooLarge(Exception):
    """The request body is over MAX_REQUEST_BYTES."""


async def read_request(conn: h11.Connection, reader: asyncio.StreamReader, wait_until: float,
                       head_timeout_s: float) -> Request | None:
    """The next request on `conn` as (method, target, headers, body); None when the agent
    closed first, or did not bring a whole head by `wait_until` (loop time) and within
    `head_timeout_s` of its first byte. Raises h11.RemoteProtocolError (hinting 431 for a
    head over MAX_HEAD_BYTES) and TooLarge."""
    event = conn.next_event()
    if event is h11.NEED_DATA:  # else a pipelined request is there already
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(wait_until) as timeout:
                started = False
                while event is h11.NEED_DATA:
                    data = await reader.read(READ_CHUNK_BYTES)
                    conn.receive_data(data)
                    if not data and conn.their_state is h11.IDLE:
                        return None
                    if not started:  # the head has begun: it must end soon, however long the wait was
                        started = True
                        timeout.reschedule(min(wait_until, loop.time() + head_timeout_s))
                    event = conn.next_event()
        except TimeoutError:
            return None
    if isinstance(event, h11.ConnectionClosed):
        return None
    if not isinstance(event, h11.Request):  # pragma: no cover - h11 yields a request first
        raise h11.RemoteProtocolError(f"unexpected {type(event).__name__} before the request head")
    request = event
    if len(request.target) + sum(len(n) + len(v) + 4 for n, v in request.headers) > MAX_HEAD_BYTES:
        raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(READ_CHUNK_BYTES))
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_REQUEST_BYTES:
                raise TooLarge
        elif isinstance(event, h11.EndOfMessage):
            return request.method, request.target, list(request.headers), bytes(body)
        elif isinstance(event, h11.ConnectionClosed):
            return None
