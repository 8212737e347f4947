"""Loopback servers speaking raw bytes, for the HTTP transport tests.

Does I/O: each server listens on an ephemeral port and runs one handler
task per connection; leaving the `async with` closes every socket and task.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@dataclass
class SeenRequest:
    line: bytes
    headers: list[tuple[bytes, bytes]]  # names lowercased
    body: bytes

    @property
    def method(self) -> bytes:
        return self.line.split(b" ", 1)[0]

    @property
    def target(self) -> bytes:
        return self.line.split(b" ")[1]

    def header(self, name: bytes) -> bytes | None:
        values = [v for n, v in self.headers if n == name]
        return values[0] if values else None


async def read_request(reader: asyncio.StreamReader) -> SeenRequest | None:
    """One request with a Content-Length body; None if the client closed first."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    line, *lines = head[:-4].split(b"\r\n")
    headers = []
    for raw in lines:
        name, _, value = raw.partition(b":")
        headers.append((name.strip().lower(), value.strip()))
    seen = SeenRequest(line, headers, b"")
    length = int(seen.header(b"content-length") or 0)
    seen.body = await reader.readexactly(length)
    return seen


async def wait_for_eof(reader: asyncio.StreamReader) -> None:
    """Read until the peer closes (FIN or reset)."""
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass


def ok(body: bytes = b"ok", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b"0\r\n\r\n"


@dataclass
class RawServer:
    """Runs `handler(reader, writer, connection_index)` for each connection."""

    handler: Handler
    host: str = "127.0.0.1"
    ssl: ssl.SSLContext | None = None
    connections: int = 0
    port: int = 0
    errors: list[BaseException] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._on_client, self.host, 0, ssl=self.ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = self.connections
        self.connections += 1
        self._writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.handler(reader, writer, index)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except BaseException as exc:  # surfaced by __aexit__
            self.errors.append(exc)
        finally:
            writer.transport.abort()
            self._tasks.discard(task)

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()
        await asyncio.sleep(0)
        if self.errors and exc_info[0] is None:
            raise self.errors[0]


@dataclass
class Proxy:
    """A forward proxy: CONNECT tunnels go to 127.0.0.1:`upstream_port` whatever
    the host asked for; absolute-form requests are answered by the proxy itself."""

    upstream_port: int = 0
    seen: list[SeenRequest] = field(default_factory=list)
    server: RawServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def connections(self) -> int:
        assert self.server is not None
        return self.server.connections

    async def __aenter__(self) -> Proxy:
        self.server = await RawServer(self._handle).__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        await self.server.__aexit__(*exc_info)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        while (request := await read_request(reader)) is not None:
            self.seen.append(request)
            if request.method != b"CONNECT":
                writer.write(ok(b"from proxy: " + request.target))
                continue
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            try:
                pipes = [asyncio.ensure_future(_pipe(reader, up_writer)),
                         asyncio.ensure_future(_pipe(up_reader, writer))]
                try:
                    await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for pipe in pipes:
                        pipe.cancel()
                    await asyncio.gather(*pipes, return_exceptions=True)
            finally:
                up_writer.transport.abort()
            return


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
