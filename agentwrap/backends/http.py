"""Upstream HTTP/1.1 client on the proxy's hot path: h11 on asyncio streams.

Does I/O: sockets, TLS, HTTP proxies. Primitives: `Timeouts`, `HttpTransport`
(a keep-alive pool per scheme/host/port/proxy; `HTTPS_PROXY`, `HTTP_PROXY`,
`NO_PROXY`), `UpstreamResponse` (a head whose body streams as it arrives) and
`HttpBackend` (one backend's base URL and timeouts on the shared transport: the
`backends.base.Backend` seam).

Nothing above this module sees a socket, ssl, asyncio or h11 exception:
`_upstream_error` turns each into `UpstreamTimeout` or `UpstreamProtocol`
(`raise ... from exc`). A bad URL or proxy setting raises `ConfigError`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

import h11

from agentwrap.backends.chunked import ChunkedDecoder
from agentwrap.errors import ConfigError, UpstreamError, UpstreamProtocol, UpstreamTimeout
from agentwrap.protocols.endpoints import upstream_url

__all__ = ["Timeouts", "HttpTransport", "HttpBackend", "UpstreamResponse"]

READ_CHUNK_BYTES = 64 * 1024
MAX_RESPONSE_HEAD_BYTES = 64 * 1024
CONNECT_TIMEOUT_SECONDS = 10.0  # TCP + TLS (+ CONNECT) handshake, unless a backend's timeout_s is shorter
HAPPY_EYEBALLS_DELAY_SECONDS = 0.25  # RFC 8305's recommended value
ROUTE_CACHE_ENTRIES = 256
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Hop-by-hop (RFC 9110 7.6.1) or framing: the transport sets these itself.
_DROPPED_HEADERS = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection",
                              b"keep-alive", b"proxy-connection", b"te", b"upgrade"})
_BODY_METHODS = frozenset({b"POST", b"PUT", b"PATCH"})
# RFC 9110 9.2.2: a request of these methods may be sent again after the connection failed.
_IDEMPOTENT_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
_PROXY_VARS = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"
# TimeoutError, ConnectionError, ssl.SSLError, socket.gaierror are OSErrors;
# asyncio.IncompleteReadError is an EOFError.
_FOREIGN_ERRORS = (OSError, EOFError, h11.ProtocolError, asyncio.LimitOverrunError)


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float = CONNECT_TIMEOUT_SECONDS  # TCP + TLS (+ CONNECT) handshake
    first_byte_s: float = 600.0  # request sent -> response head received
    read_idle_s: float = 600.0  # max gap between body chunks while we wait for one


@dataclass(frozen=True, slots=True)
class _Proxy:
    host: str
    port: int
    auth: bytes | None = field(default=None, repr=False)  # Proxy-Authorization value


@dataclass(frozen=True, slots=True)
class _Route:
    """What a URL means for a request; cached per URL string."""

    tls: bool
    host: str
    port: int
    authority: bytes  # host:port with IPv6 in brackets: the CONNECT target
    host_header: bytes
    target: bytes  # origin-form, or absolute-form through an http proxy
    proxy: _Proxy | None
    extra_headers: tuple[tuple[bytes, bytes], ...]
    key: tuple[object, ...]  # the pool's key
    where: str  # names the upstream in messages


class _NoResponse(ConnectionError):
    """A pooled connection failed before the request was fully written (or, for an
    idempotent method, before a single response byte arrived): the upstream cannot have
    acted on it (or may act twice harmlessly), so it is sent again on a fresh connection."""


def _upstream_error(exc: BaseException, where: str, phase: str, timeout_s: float, conn: _Conn | None) -> UpstreamError:
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


class _Translating:
    """Context manager applying `_upstream_error` to what escapes it."""

    __slots__ = ("where", "phase", "timeout_s", "conn")

    def __init__(self, where: str) -> None:
        self.where, self.phase, self.timeout_s, self.conn = where, "request", 0.0, None

    def __enter__(self) -> _Translating:
        return self

    def __exit__(self, typ: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None and isinstance(exc, _FOREIGN_ERRORS):
            raise _upstream_error(exc, self.where, self.phase, self.timeout_s, self.conn) from exc


class _Conn:
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

    def __init__(self, head: h11.Response, conn: _Conn, pool: HttpTransport, where: str, idle_s: float,
                 chunked: bool = False) -> None:
        self.status: int = head.status_code
        self.reason: bytes = head.reason
        self.headers: list[tuple[bytes, bytes]] = head.headers.raw_items()  # names as received
        self._conn: _Conn | None = conn
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

    async def _next_chunked(self, conn: _Conn) -> bytes:
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

    def _failed(self, conn: _Conn, exc: BaseException) -> BaseException:
        """Drop the connection after a body read failed; the exception the caller should see."""
        closed_meanwhile = self._conn is None  # by aclose() from another task
        self._conn = None
        self._pool._discard(conn)
        if closed_meanwhile and not isinstance(exc, asyncio.CancelledError):
            return RuntimeError("the response was closed before its body was read")
        if isinstance(exc, _FOREIGN_ERRORS):
            return _upstream_error(exc, self._where, "body", self._idle_s, conn)
        return exc

    def _finish_chunked(self, conn: _Conn) -> None:
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


def _is_chunked(head: h11.Response) -> bool:
    if head.status_code < 200 or head.status_code in (204, 304):
        return False
    for name, value in head.headers:  # h11 lowercases names
        if name == b"transfer-encoding":
            return value.lower().rstrip().endswith(b"chunked")
    return False


class HttpTransport:
    """HTTP/1.1 client with a keep-alive pool per (scheme, host, port, proxy)."""

    def __init__(self, *, timeouts: Timeouts = Timeouts(), env: Mapping[str, str] | None = None,
                 max_idle_per_host: int = 64, ssl_context: ssl.SSLContext | None = None) -> None:
        source = os.environ if env is None else env
        self._env = {k: v for k, v in source.items() if k.lower() in _PROXY_VARS}
        self._no_proxy = _no_proxy_rules(self._env.get("no_proxy") or self._env.get("NO_PROXY") or "")
        self._timeouts, self._max_idle = timeouts, max_idle_per_host
        self._ssl_context = ssl_context  # the default one is built on first use: it costs 30-40 ms
        self._idle: dict[tuple[object, ...], deque[_Conn]] = {}
        self._active: set[_Conn] = set()
        self._routes: dict[str, _Route] = {}
        self._proxies: dict[str, _Proxy | None] = {}  # by scheme
        self._closed = False

    async def request(self, method: str, url: str, headers: list[tuple[bytes, bytes]], body: bytes = b"",
                      timeouts: Timeouts | None = None) -> UpstreamResponse:
        """Send one request; return once the response head has arrived.

        A pooled connection that fails before the request is fully written is
        replaced by a fresh one, once (for an idempotent method also one that
        closes before any response byte arrived). A POST the upstream may have
        read is never sent twice: that failure is raised, and the failover plan
        decides. Raises ConfigError (URL, proxy settings), UpstreamTimeout,
        UpstreamProtocol.
        """
        if self._closed:
            raise RuntimeError("HttpTransport is closed")
        t = timeouts or self._timeouts
        route = self._route(url)
        method_b = method.encode("ascii") if isinstance(method, str) else method
        fields = [(b"host", route.host_header)]
        fields += [item for item in headers if item[0].lower() not in _DROPPED_HEADERS]
        fields += route.extra_headers
        if body or method_b in _BODY_METHODS:
            fields.append((b"content-length", b"%d" % len(body)))
        with _Translating(route.where) as tr:
            request = h11.Request(method=method_b, target=route.target, headers=fields)
            conn = self._checkout(route.key)
            if conn is not None:
                tr.timeout_s, tr.conn = t.first_byte_s, conn
                try:
                    return await self._exchange(conn, route, request, body, t)
                except _NoResponse:
                    pass  # the server had dropped the pooled connection: retry once
            tr.phase, tr.timeout_s, tr.conn = "connect", t.connect_s, None
            conn = await self._connect(route, t.connect_s)
            tr.phase, tr.timeout_s, tr.conn = "request", t.first_byte_s, conn
            return await self._exchange(conn, route, request, body, t)

    async def aclose(self) -> None:
        """Close every connection, pooled or still streaming."""
        self._closed = True
        for conn in [c for idle in self._idle.values() for c in idle] + list(self._active):
            conn.close()
        self._idle.clear()
        self._active.clear()
        await asyncio.sleep(0)  # let the transports release their sockets

    async def _exchange(self, conn: _Conn, route: _Route, request: h11.Request, body: bytes,
                        t: Timeouts) -> UpstreamResponse:
        h, reader, writer = conn.h11, conn.reader, conn.writer
        # Until the whole request has been handed to the kernel the upstream cannot have
        # read it: a failure then may be retried. Afterwards it may be generating already
        # (a reset is as likely a crash mid-request as a stale keep-alive connection).
        retryable = True
        try:
            async with asyncio.timeout(t.first_byte_s):
                try:
                    head = h.send(request)
                    if body:
                        h.send_with_data_passthrough(h11.Data(data=body))
                    h.send(h11.EndOfMessage())
                    if len(body) <= READ_CHUNK_BYTES:
                        writer.write(head + body)  # one write, one segment
                    else:  # copying a big body costs more than a second send()
                        writer.write(head)
                        writer.write(body)
                    await writer.drain()
                    retryable = request.method in _IDEMPOTENT_METHODS
                    while (event := h.next_event()) is h11.NEED_DATA or type(event) is h11.InformationalResponse:
                        if event is h11.NEED_DATA:  # else a 1xx: wait for the real head
                            data = await reader.read(READ_CHUNK_BYTES)
                            if not data and not conn.received:
                                conn.eof = True
                                raise _NoResponse() if retryable else ConnectionError()
                            conn.received, conn.eof = True, not data
                            h.receive_data(data)
                except ConnectionError as exc:
                    if conn.received or not retryable or isinstance(exc, _NoResponse):
                        raise
                    raise _NoResponse(*exc.args) from exc
        except BaseException:
            self._discard(conn)
            raise
        chunked = request.method != b"HEAD" and _is_chunked(event)
        return UpstreamResponse(event, conn, self, route.where, t.read_idle_s, chunked)

    async def _connect(self, route: _Route, connect_s: float) -> _Conn:
        proxy = route.proxy
        tls = self._tls_context() if route.tls else None
        async with asyncio.timeout(connect_s):
            if proxy is None:
                reader, writer = await asyncio.open_connection(
                    route.host, route.port, ssl=tls, server_hostname=route.host if tls else None,
                    happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY_SECONDS)
            else:
                reader, writer = await asyncio.open_connection(
                    proxy.host, proxy.port, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY_SECONDS)
                if tls is not None:
                    try:
                        await _open_tunnel(reader, writer, route, proxy)
                        await writer.start_tls(tls, server_hostname=route.host)
                    except BaseException:
                        writer.transport.abort()
                        raise
        conn = _Conn(reader, writer, route.key)
        self._active.add(conn)
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            context = ssl.create_default_context()
            context.set_alpn_protocols(["http/1.1"])
            self._ssl_context = context
        return self._ssl_context

    def _checkout(self, key: tuple[object, ...]) -> _Conn | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()  # the most recently used is the least likely to be stale
            if conn.reusable():
                self._active.add(conn)
                return conn
            conn.close()
        return None

    def _release(self, conn: _Conn, *, fresh: bool = False) -> None:
        """Pool a connection whose response is complete. `fresh`: its last body was
        read outside h11 (chunked.py), so it gets a new h11 state instead of a next cycle."""
        self._active.discard(conn)
        h = conn.h11
        if fresh:
            conn.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_RESPONSE_HEAD_BYTES)
        elif h.our_state is not h11.DONE or h.their_state is not h11.DONE:
            conn.close()
            return
        else:
            h.start_next_cycle()
        if self._closed:
            conn.close()
            return
        conn.received = conn.eof = False
        idle = self._idle.setdefault(conn.key, deque())
        if len(idle) < self._max_idle:
            idle.append(conn)
        else:
            conn.close()

    def _discard(self, conn: _Conn) -> None:
        self._active.discard(conn)
        conn.close()

    def _route(self, url: str) -> _Route:
        route = self._routes.get(url)
        if route is None:
            if len(self._routes) >= ROUTE_CACHE_ENTRIES:
                self._routes.clear()
            route = self._routes[url] = self._make_route(url)
        return route

    def _make_route(self, url: str) -> _Route:
        scheme, _, host, port, target = _split_url(url, "upstream URL")
        authority = f"[{host}]" if ":" in host else host
        host_header = authority if port == _DEFAULT_PORTS[scheme] else f"{authority}:{port}"
        proxy = self._proxy_for(scheme, host, port)
        extra: tuple[tuple[bytes, bytes], ...] = ()
        where = f"{authority}:{port}"
        if proxy is not None:
            where += f" via proxy {proxy.host}:{proxy.port}"
            if scheme == "http":
                target = f"http://{host_header}{target}"  # absolute-form, RFC 9112 3.2.2
                extra = ((b"proxy-authorization", proxy.auth),) if proxy.auth else ()
        if not (target.isascii() and target.isprintable() and " " not in target):
            # surrogatepass: a lone surrogate (a model name from JSON, put in a Gemini path) is sent
            # percent-encoded like any other code point, for the upstream to refuse.
            target = quote(target, safe=_URL_SAFE, errors="surrogatepass")
        return _Route(tls=scheme == "https", host=host, port=port, authority=f"{authority}:{port}".encode(),
                      host_header=host_header.encode(), target=target.encode(), proxy=proxy,
                      extra_headers=extra, key=(scheme, host, port, proxy), where=where)

    def _proxy_for(self, scheme: str, host: str, port: int) -> _Proxy | None:
        if _is_loopback(host) or _no_proxy_matches(self._no_proxy, host, port):
            return None
        if scheme not in self._proxies:
            names = (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY")
            name, value = next(((n, v) for n in names if (v := self._env.get(n, "").strip())), ("", ""))
            self._proxies[scheme] = _parse_proxy(name, value) if value else None
        return self._proxies[scheme]


async def _open_tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, route: _Route,
                       proxy: _Proxy) -> None:
    """Ask an HTTP proxy for a tunnel: CONNECT host:port (RFC 9110 9.3.6)."""
    h = h11.Connection(h11.CLIENT)
    fields = [(b"host", route.authority)] + ([(b"proxy-authorization", proxy.auth)] if proxy.auth else [])
    writer.write(h.send(h11.Request(method=b"CONNECT", target=route.authority, headers=fields))
                 + h.send(h11.EndOfMessage()))
    await writer.drain()
    h.receive_data(await reader.readuntil(b"\r\n\r\n"))
    event = h.next_event()
    if type(event) is h11.Response and 200 <= event.status_code < 300:
        return
    status = f"{event.status_code} {event.reason.decode('latin-1')}" if isinstance(event, h11.Response) else "?"
    hint = "; check the user and password in the proxy URL" if status.startswith("407") else ""
    raise UpstreamProtocol(f"proxy {proxy.host}:{proxy.port} refused CONNECT {route.authority.decode()}: {status}{hint}")


def _split_url(url: str, what: str) -> tuple[str, str, str, int, str]:
    """Split an http(s) URL into scheme, userinfo, host, port and path+query.

    The path and query are kept as given; the fragment is dropped. Raises ConfigError.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS:
        raise ConfigError(f"{what} must start with http:// or https://" + (f", not {scheme}://" if sep else ""))
    end = min([i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i != -1], default=len(rest))
    authority, target = rest[:end], rest[end:].partition("#")[0]
    target = target if target.startswith("/") else "/" + target
    userinfo, _, hostport = authority.rpartition("@")
    if hostport.startswith("["):  # IPv6 literal, RFC 3986 3.2.2
        host, bracket, port_s = hostport[1:].partition("]")
        if not bracket or (port_s and not port_s.startswith(":")):
            raise ConfigError(f"{what} has a malformed IPv6 host: {hostport!r}")
        port_s = port_s[1:]
    else:
        host, _, port_s = hostport.partition(":")
    if not host:
        raise ConfigError(f"{what} has no host: {scheme}://{hostport}")
    if port_s and not (port_s.isascii() and port_s.isdigit() and 0 < int(port_s) < 65536):
        raise ConfigError(f"{what} has an invalid port: {port_s!r}")
    host = host.lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ConfigError(f"{what} has an invalid host name: {host!r}") from exc
    return scheme, userinfo, host, int(port_s) if port_s else _DEFAULT_PORTS[scheme], target


def _parse_proxy(name: str, value: str) -> _Proxy:
    value = value if "://" in value else "http://" + value
    scheme = value.partition("://")[0].lower()
    if scheme != "http":
        raise ConfigError(f"{name} names a {scheme}:// proxy; only http:// proxies are supported. "
                          f"Unset {name} or point it at an HTTP proxy.")
    _, userinfo, host, port, _ = _split_url(value, name)
    auth = None
    if userinfo:
        user, _, password = userinfo.partition(":")
        auth = b"Basic " + base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode())
    return _Proxy(host, port, auth)


def _is_loopback(host: str) -> bool:
    if host.startswith("127."):
        return host.replace(".", "").isdigit()
    return host in ("localhost", "::1") or host.endswith(".localhost")


def _no_proxy_rules(value: str) -> tuple[tuple[str, int | None], ...]:
    """Parse NO_PROXY: `*`, or host suffixes (`example.com`, `.example.com`,
    `*.example.com`) with an optional `:port`; IPv6 hosts in brackets."""
    rules = []
    for entry in value.replace(" ", ",").lower().split(","):
        if entry == "*":
            return (("*", None),)
        if entry.startswith("["):
            entry, _, port_s = entry[1:].partition("]")
            port_s = port_s[1:]
        elif entry.count(":") == 1:
            entry, _, port_s = entry.partition(":")
        else:
            port_s = ""
        if entry := entry.removeprefix("*").removeprefix("."):
            rules.append((entry, int(port_s) if port_s.isascii() and port_s.isdigit() else None))
    return tuple(rules)


def _no_proxy_matches(rules: tuple[tuple[str, int | None], ...], host: str, port: int) -> bool:
    return any(rule == "*" or (rule_port in (None, port) and (host == rule or host.endswith("." + rule)))
               for rule, rule_port in rules)


class HttpBackend:
    """An http backend behind the `Backend` seam: the session's shared `HttpTransport`,
    this backend's base URL and its timeouts. The credential is already in the
    request's headers (the proxy's header policy puts it there, so capture records
    the request exactly as sent)."""

    __slots__ = ("config", "transport", "timeouts")

    def __init__(self, config, transport: HttpTransport) -> None:
        self.config = config  # config.model.BackendConfig
        self.transport = transport
        t = config.timeout_s
        # `timeout_s` bounds the connect too, but never lengthens it: a handshake that takes
        # longer than CONNECT_TIMEOUT_SECONDS is a dead host, whatever the backend's generation speed.
        self.timeouts = Timeouts(connect_s=min(t, CONNECT_TIMEOUT_SECONDS), first_byte_s=t, read_idle_s=t) if t else None

    def url(self, protocol: str, target: str) -> str:
        return upstream_url(self.config.protocol or protocol, self.config.base_url or "", target)

    async def send(self, request) -> UpstreamResponse:
        return await self.transport.request(request.method, request.url, request.headers, request.body, timeouts=self.timeouts)
