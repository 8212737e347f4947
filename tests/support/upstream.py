"""A real scripted upstream for tests: an HTTP/1.1 server on 127.0.0.1:0.

It speaks all four protocols (Anthropic Messages, OpenAI Chat Completions,
OpenAI Responses, Gemini) with streaming, answering from the same turn format
as agentwrap's scripted backend. It is built on the standard library's
threaded HTTP server, not on agentwrap's proxy, so the proxy is tested against
an independent peer. It records every request it receives and can be told to
fail: a status with a body, a stream cut after N chunks, a delay per chunk.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agentwrap.backends.scripted import Script, ScriptedBackend
from agentwrap.protocols.endpoints import classify


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection_id: int

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Failure:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format, *args):  # noqa: A002 - silence the default stderr log
        pass

    def _handle(self) -> None:
        up = self.server.upstream
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        rec = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, id(self.connection))
        with up.lock:
            up.requests.append(rec)
            failure = up.failures.pop(0) if up.failures else None
        if failure is not None:
            self.send_response(failure.status)
            headers = {"content-type": "application/json", **failure.headers}
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(failure.body)))
            self.end_headers()
            self.wfile.write(failure.body)
            return
        path = self.path.split("?", 1)[0]
        if path.startswith(up.prefix):
            path = path[len(up.prefix):] or "/"
        endpoint = classify(path)
        protocol = endpoint.protocol or up.default_protocol
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        reply = up.backend.respond(protocol, self.command, path, parsed)
        self.send_response(reply.status)
        self.send_header("content-type", reply.content_type)
        self.send_header("x-upstream", "scripted")
        if not reply.stream:
            data = reply.body
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            return
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        for i, chunk in enumerate(reply.chunks):
            if up.cut_after_chunks is not None and i >= up.cut_after_chunks:
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # a reset mid-stream, no terminating chunk
                return
            if up.chunk_delay_s:
                time.sleep(up.chunk_delay_s)
            if up.gate is not None and i == 1:
                up.gate.wait(10)  # hold the second chunk until the test has seen the first
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    upstream: "ScriptedUpstream"

    def handle_error(self, request, client_address) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # the client went away mid-response (tests that cut streams or kill agentwrap)
        super().handle_error(request, client_address)


class LoopbackServer:
    """An HTTP server class on 127.0.0.1 (an ephemeral port) serving from a thread, over TLS
    with `ssl_context`; `with` starts and stops it. The server's `upstream` is this object."""

    prefix = ""  # a base URL path

    def __init__(self, server_class, handler, ssl_context=None) -> None:
        self.lock = threading.Lock()
        self._server = server_class(("127.0.0.1", 0), handler)
        self._server.upstream = self
        self.tls = ssl_context is not None
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{self.prefix}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class ScriptedUpstream(LoopbackServer):
    """`with ScriptedUpstream(script_toml) as up:` -> `up.url`, `up.requests`."""

    def __init__(
        self, script: str, *, default_protocol: str = "anthropic_messages", prefix: str = "", ssl_context=None
    ) -> None:
        self.backend = ScriptedBackend(Script.from_toml(script, "<test script>"))
        self.default_protocol = default_protocol
        self.prefix = prefix
        self.requests: list[Recorded] = []
        self.failures: list[Failure] = []
        self.cut_after_chunks: int | None = None
        self.chunk_delay_s = 0.0
        self.gate: threading.Event | None = None
        super().__init__(_Server, _Handler, ssl_context)

    def fail_next(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        with self.lock:
            self.failures.append(Failure(status, raw, headers or {}))

    def model_requests(self) -> list[Recorded]:
        return [r for r in self.requests if classify(r.path.split("?", 1)[0][len(self.prefix):]).kind == "generate"]


class ConnectProxy:
    """A forward proxy for HTTPS_PROXY: records each CONNECT target and tunnels it
    to 127.0.0.1:`tunnel_port`, whatever host was asked for."""

    def __init__(self, tunnel_port: int) -> None:
        import socket

        self.tunnel_port = tunnel_port
        self.targets: list[str] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(conn,), daemon=True).start()

    def _tunnel(self, conn) -> None:
        import socket

        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(4096)
            if not data:
                conn.close()
                return
            head += data
        line = head.split(b"\r\n", 1)[0].decode()
        method, target, _ = line.split(" ", 2)
        self.targets.append(target)
        if method != "CONNECT":
            conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            conn.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.tunnel_port))
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(a, b):
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        t = threading.Thread(target=pipe, args=(upstream, conn), daemon=True)
        t.start()
        pipe(conn, upstream)
        t.join(5)
        conn.close()
        upstream.close()

    def __enter__(self) -> "ConnectProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        import socket

        self._stop.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() a plain close() leaves blocked
        except OSError:
            pass
        self._sock.close()
        self._thread.join(5)
