"""The h11 server the agent talks to, on its own asyncio loop in a thread.

The listening socket is bound in the caller's thread (`bind()`), so the port is
known before the agent is spawned and before the loop thread even starts;
connections that arrive early wait in the listen backlog. Responses are
streamed: each upstream chunk is written as it arrives, and writes are not
awaited per chunk (asyncio buffers them and `drain()` applies back-pressure
only when the agent reads slowly).

What a connection may hold (time to a head, head size, how many stay open) and
how the agent leaving a stream is noticed live in `inbound.py`. The loop's own
reports (accept() out of descriptors, say) are recorded, never printed: the
agent owns the terminal.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
import threading
import traceback

import h11

from agentwrap.errors import UpstreamError
from agentwrap.proxy.dispatch import Dispatcher
from agentwrap.proxy.flow import ProxyResponse
from agentwrap.proxy.inbound import (
    HEAD_TIMEOUT_SECONDS,
    IDLE_TIMEOUT_SECONDS,
    MAX_HEAD_BYTES,
    MAX_REQUEST_BYTES,
    AgentConnection,
    OpenConnections,
    TooLarge,
    connection_limit,
    read_request,
)

__all__ = ["ProxyServer", "MAX_REQUEST_BYTES"]

HIGH_WATER_BYTES = 1024 * 1024
# accept() failing for want of descriptors or memory: asyncio stops accepting for a second
# and tells the loop's exception handler.
_ACCEPT_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class ProxyServer:
    """Serve one Dispatcher on 127.0.0.1:<free port> until `stop()`.

    `head_timeout_s`, `idle_timeout_s` and `connections.limit` bound the inbound side
    (inbound.py); they are read as connections need them, so they may change while it runs."""

    def __init__(self, dispatcher: Dispatcher, host: str = "127.0.0.1") -> None:
        self.dispatcher = dispatcher
        self.host = host
        self.port = 0
        self.head_timeout_s = HEAD_TIMEOUT_SECONDS
        self.idle_timeout_s = IDLE_TIMEOUT_SECONDS
        self.connections = OpenConnections(connection_limit())
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task] = set()
        self._active_responses = 0
        self._start_error: BaseException | None = None

    def bind(self) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        sock.listen(512)
        sock.setblocking(False)
        return self.adopt(sock)

    def adopt(self, sock: socket.socket) -> int:
        """Serve on an already listening (non-blocking) socket."""
        self._sock = sock
        self.port = sock.getsockname()[1]
        return self.port

    def start(self) -> None:
        if self._sock is None:
            self.bind()
        self._thread = threading.Thread(target=self._run, name="agentwrap-proxy", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.set_exception_handler(self._loop_error)
        try:
            self._server = loop.run_until_complete(
                loop.create_server(lambda: AgentConnection(self.connections, self._on_connection, loop), sock=self._sock)
            )
        except BaseException as exc:  # pragma: no cover - start failures are reported to the caller
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, grace_s: float = 2.0) -> None:
        """Stop accepting, give in-flight responses `grace_s` to finish, then cut them."""
        loop = self._loop
        if loop is None or self._thread is None:
            if self._sock is not None:
                self._sock.close()
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(grace_s), loop)
        try:
            fut.result(timeout=grace_s + 5)
        except Exception:  # pragma: no cover - best effort at exit
            pass
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=5)

    async def _shutdown(self, grace_s: float) -> None:
        if self._server is not None:
            self._server.close()
        deadline = asyncio.get_running_loop().time() + grace_s
        while self._active_responses and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        await self.dispatcher.aclose()

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        """Record what the loop reports (printed only with AGENTWRAP_DEBUG=1)."""
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _ACCEPT_RESOURCE_ERRNOS:
            message = f"agentwrap: cannot accept a connection ({os.strerror(exc.errno)}); retrying in 1 s"
        else:
            message = f"agentwrap internal error: {context.get('message')}: {exc!r}"
        self.dispatcher.report("connection", message)
        if os.environ.get("AGENTWRAP_DEBUG") == "1":
            loop.default_exception_handler(context)

    # -- one connection ---------------------------------------------------------

    async def _on_connection(self, proto: AgentConnection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = proto.task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.transport.set_write_buffer_limits(high=HIGH_WATER_BYTES)
        try:
            await self._serve(reader, writer, proto)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the agent left mid-stream, or the server is stopping
        except Exception as exc:
            # Our bug: report it, keep serving other connections.
            self.dispatcher.report("connection", f"agentwrap internal error: {type(exc).__name__}: {exc}")
            if os.environ.get("AGENTWRAP_DEBUG") == "1":
                traceback.print_exc(file=sys.stderr)
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, proto: AgentConnection) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        loop = asyncio.get_running_loop()
        wait_until = loop.time() + self.head_timeout_s
        while True:
            try:
                request = await read_request(conn, reader, wait_until, self.head_timeout_s)
            except h11.RemoteProtocolError as exc:
                # h11's hint is 431 for a head too large; never a 5xx for the agent's mistake
                # (h11 hints 501 for an unknown transfer coding): SDKs retry those.
                status = exc.error_status_hint if 400 <= exc.error_status_hint < 500 else 400
                message = (f"agentwrap: request head larger than {MAX_HEAD_BYTES >> 10} KiB" if status == 431
                           else f"agentwrap: malformed HTTP request: {exc}")
                await self._send_simple(conn, writer, status, message)
                return
            except TooLarge:
                await self._send_simple(conn, writer, 413, "agentwrap: request body too large")
                return
            if request is None:
                return
            method, target, headers, body = request
            if method == b"CONNECT":  # no tunnels here; forwarded, a 2xx would switch h11's protocol
                await self._send_simple(conn, writer, 405, "agentwrap: CONNECT is not supported")
                return
            proto.served = proto.busy = True
            self._active_responses += 1
            try:
                try:
                    response = await self.dispatcher.handle(method, target, headers, body)
                except Exception as exc:  # our bug: answer it in the agent's protocol, keep serving
                    response = self._internal_error(exc)
                await self._send_response(conn, writer, method, response, proto)
            except UpstreamError:
                return  # the response was cut after its head went out; the dispatcher counted it
            finally:
                self._active_responses -= 1
                proto.busy = False
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return
            wait_until = loop.time() + self.idle_timeout_s

    def _internal_error(self, exc: Exception) -> ProxyResponse:
        if os.environ.get("AGENTWRAP_DEBUG") == "1":
            traceback.print_exception(exc, file=sys.stderr)
        return self.dispatcher.internal_error(exc)

    async def _send_simple(self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int, message: str) -> None:
        if writer.transport.is_closing():
            return  # closed over the connection limit, or gone: no one to answer
        body = self.dispatcher.refusal(status, message)
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        try:
            head = h11.Response(
                status_code=status,
                headers=[(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
            )
            writer.write(conn.send(head) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
            await writer.drain()
        except (h11.LocalProtocolError, ConnectionError):
            pass

    async def _send_response(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, method: bytes, response: ProxyResponse,
        proto: AgentConnection,
    ) -> None:
        body = response.body
        headers = response.headers
        if isinstance(body, (bytes, bytearray)):
            if not any(n == b"content-length" for n, _ in headers):
                headers = [*headers, (b"content-length", str(len(body)).encode())]
            # One write, so one send() for the whole response (a send per part costs a
            # syscall each on the latency path).
            out = conn.send(h11.Response(status_code=response.status, headers=headers))
            if body and method != b"HEAD":
                out += conn.send(h11.Data(data=body))
            writer.write(out + conn.send(h11.EndOfMessage()))
            await writer.drain()
            return
        # HTTP/1.1 agents get chunked framing done by hand (0.1 us against 2.5 us
        # for h11.send(Data) per event); h11 still writes the head and the last chunk.
        by_hand = conn.their_http_version == b"1.1" and not any(n == b"content-length" for n, _ in headers)
        if by_hand:
            headers = [*headers, (b"transfer-encoding", b"chunked")]
        proto.streaming = response  # until the body ends: the agent leaving then cancels this task
        try:
            writer.write(conn.send(h11.Response(status_code=response.status, headers=headers)))
            transport = writer.transport
            write = transport.write
            async for chunk in body:
                if not chunk:
                    continue
                if by_hand:
                    write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                else:
                    write(conn.send(h11.Data(data=chunk)))
                if transport.get_write_buffer_size() > HIGH_WATER_BYTES:
                    await writer.drain()
            proto.streaming = None  # the whole body is written: a loss from here on leaves nothing unsent
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        except BaseException:
            # Upstream failed after the head went out, the agent left or the server is
            # stopping: the only honest signal left is to cut the connection.
            proto.streaming = None
            conn.send_failed()
            writer.transport.abort()
            raise
        finally:
            await body.aclose()
