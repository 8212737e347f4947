"""A raw-socket upstream that misbehaves on command, for the reliability suite.

`FaultServer` listens on 127.0.0.1:0 and runs its own asyncio loop in a
thread, so the official SDKs (synchronous) and agentwrap's proxy (its own
loop in its own thread) talk to it as to any remote server. Each connection
runs `server.handler(conn)`, an async function scripted per test case: read
the request, then answer well, reset the connection, stall, cut a stream,
send garbage. The server speaks HTTP/1.1 by hand (nothing of agentwrap's
HTTP code), records every request and when the proxy closed each connection.

Does I/O: sockets and one thread.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agentwrap.backends.scripted import Script, ScriptedBackend
from agentwrap.protocols.endpoints import classify

__all__ = [
    "ANSWER_TEXT", "FAULT_SERVER_THREAD", "GENERATE_PATH", "PROTOCOLS", "Conn", "FaultServer", "SeenRequest",
    "canned", "canned_stream", "closed_port", "good_request", "serve_good", "sse_blocks",
]

FAULT_SERVER_THREAD = "fault-server"
PROTOCOLS = ("anthropic_messages", "openai_chat", "openai_responses", "gemini")
ANSWER_TEXT = "Hello from the fault server."
GENERATE_PATH = {
    "anthropic_messages": "/v1/messages",
    "openai_chat": "/v1/chat/completions",
    "openai_responses": "/v1/responses",
    "gemini": "/v1beta/models/g:generateContent",
}


def good_request(protocol: str, stream: bool) -> tuple[str, dict]:
    """A small valid model call of `protocol`: (path with query, JSON body)."""
    if protocol == "anthropic_messages":
        body: dict = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    elif protocol == "openai_chat":
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    elif protocol == "openai_responses":
        body = {"model": "m", "input": "hi"}
    else:
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        path = "/v1beta/models/g:streamGenerateContent?alt=sse" if stream else "/v1beta/models/g:generateContent"
        return path, body
    if stream:
        body["stream"] = True
    return GENERATE_PATH[protocol], body


def canned(protocol: str, stream: bool, text: str = ANSWER_TEXT) -> tuple[str, bytes]:
    """A complete, valid answer of `protocol`: (content type, body bytes)."""
    path, body = good_request(protocol, stream)
    backend = ScriptedBackend(Script.from_toml(f"[[turns]]\ntext = {json.dumps(text)}\n"))
    reply = backend.respond(protocol, "POST", path.split("?")[0], body)
    assert reply.status == 200
    return reply.content_type, reply.body


def canned_stream(protocol: str, pieces: list[str], model: str = "m") -> tuple[str, bytes]:
    """A complete, valid stream of `protocol` whose text comes in `pieces`, one event each."""
    from agentwrap.protocols import neutral as ev
    from agentwrap.protocols.codec import codec

    enc = codec(protocol).StreamEncoder(model, "resp_fault_1")
    events = [ev.MessageStart(id="msg_fault_1", model=model), *(ev.TextDelta(p) for p in pieces),
              ev.Usage(input_tokens=3, output_tokens=len(pieces)), ev.Stop("end_turn")]
    return enc.content_type, b"".join(enc.feed(e) for e in events) + enc.finish()


def sse_blocks(data: bytes) -> list[bytes]:
    """An SSE body split into its events, each with its blank line (LF-only bodies)."""
    return [block + b"\n\n" for block in data.split(b"\n\n") if block]


@dataclass
class SeenRequest:
    method: str
    target: str
    headers: list[tuple[str, str]]  # names lowercased
    body: bytes
    connection: int

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n == name), None)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


class Conn:
    """One accepted connection, with the small vocabulary the fault scripts need."""

    def __init__(self, server: FaultServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        self.server, self.reader, self.writer, self.index = server, reader, writer, index
        self.bytes_sent = 0

    async def request(self) -> SeenRequest | None:
        """Read one request (Content-Length body); None if the peer closed first."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:  # as a real server does: refuse an oversized head, close
            body = b'{"error": {"code": 431, "message": "request head too large", "status": "INVALID_ARGUMENT"}}'
            self.whole(431, "application/json", body, [("connection", "close")])
            await self.drain()
            return None
        line, *lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, _ = line.split(" ", 2)
        headers = []
        for raw in lines:
            name, _, value = raw.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        length = int(next((v for n, v in headers if n == "content-length"), "0"))
        body = await self.reader.readexactly(length) if length else b""
        seen = SeenRequest(method, target, headers, body, self.index)
        self.server.requests.append(seen)
        return seen

    def send(self, data: bytes) -> None:
        self.writer.write(data)
        self.bytes_sent += len(data)

    def head(self, status: int, headers: list[tuple[str, str]] | None = None, *, length: int | None = None) -> None:
        """Send a response head: chunked unless `length` is given."""
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        for name, value in headers or []:
            lines.append(f"{name}: {value}")
        lines.append(f"content-length: {length}" if length is not None else "transfer-encoding: chunked")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def chunk(self, data: bytes) -> None:
        if data:
            self.send(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunks(self) -> None:
        self.send(b"0\r\n\r\n")

    async def drain(self) -> None:
        await self.writer.drain()

    def whole(self, status: int, content_type: str, body: bytes, extra: list[tuple[str, str]] | None = None) -> None:
        self.head(status, [("content-type", content_type), *(extra or [])], length=len(body))
        self.send(body)

    async def stream(self, content_type: str, blocks: list[bytes], delay_s: float = 0.0) -> None:
        """A chunked SSE response, one chunk per block, ended properly."""
        self.head(200, [("content-type", content_type), ("cache-control", "no-cache")])
        for block in blocks:
            self.chunk(block)
            await self.drain()
            if delay_s:
                await asyncio.sleep(delay_s)
        self.end_chunks()
        await self.drain()

    def reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0), the way a crashed or overloaded peer does."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.writer.transport.abort()

    async def peer_closed(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for the proxy to close its side; True if it did."""
        try:
            async with asyncio.timeout(timeout_s):
                while await self.reader.read(65536):
                    pass
            return True
        except TimeoutError:
            return False
        except ConnectionError:
            return True


Handler = Callable[[Conn], Awaitable[None]]


async def serve_good(conn: Conn) -> None:
    """A well-behaved upstream: every request on the connection gets a complete answer in
    the protocol its path names (keep-alive); a body that is not a JSON object gets a 400."""
    while (req := await conn.request()) is not None:
        path = req.path
        endpoint = classify(path.removeprefix(conn.server.prefix) or "/")
        protocol = endpoint.protocol or "anthropic_messages"
        try:
            parsed = json.loads(req.body)
        except ValueError:
            parsed = None
        if endpoint.kind != "generate" or not isinstance(parsed, dict):
            body = json.dumps({"error": {"type": "invalid_request_error", "message": "not a model call"}}).encode()
            conn.whole(400, "application/json", body)
            await conn.drain()
            continue
        stream = bool(endpoint.stream) if protocol == "gemini" else parsed.get("stream") is True
        ctype, data = canned(protocol, stream)
        if stream:
            await conn.stream(ctype, sse_blocks(data))
        else:
            conn.whole(200, ctype, data)
            await conn.drain()


@dataclass
class FaultServer:
    """`with FaultServer(handler) as up:` -> `up.url`, `up.requests`, `up.connections`."""

    handler: Handler = serve_good
    prefix: str = ""  # a base-URL path prefix the tests put in front of the protocol's path
    requests: list[SeenRequest] = field(default_factory=list)
    connections: int = 0
    closed: dict[int, float] = field(default_factory=dict)  # connection -> monotonic time the handler ended
    errors: list[BaseException] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)  # free for scripts: what they sent, events, gates
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=FAULT_SERVER_THREAD, daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def call(self, coro: Awaitable[Any], timeout: float = 10) -> Any:
        """Run a coroutine on the server's loop from the test's thread."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> None:
        # A 1 MiB line limit: the server must record what a broken proxy forwards, not choke on it.
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", 0, backlog=2048, limit=1 << 20)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = self.connections
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.handler(Conn(self, reader, writer, index))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except BaseException as exc:  # a broken script: surfaced at exit
            self.errors.append(exc)
        finally:
            self.closed[index] = time.monotonic()
            await _close(writer)
            self._tasks.discard(task)

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def __enter__(self) -> FaultServer:
        self._thread.start()
        self.call(self._start())
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.call(self._stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()
        if self.errors and exc_info[0] is None:
            raise self.errors[0]


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close after what was written has gone out (abort() would drop up to the write
    buffer's high-water mark, a fault no script asked for); abort if the peer stalls."""
    if writer.transport.is_closing():
        writer.transport.abort()
        return
    writer.close()
    try:
        async with asyncio.timeout(5):
            await writer.wait_closed()
    except (TimeoutError, ConnectionError, asyncio.CancelledError):
        writer.transport.abort()


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
}
