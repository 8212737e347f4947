"""Upstream HTTP/1.1 client on the proxy's hot path: h11 on asyncio streams.

Does I/O: sockets, TLS, HTTP proxies. Primitives: `Timeouts`, `HttpTransport`
(a keep-alive pool per scheme/host/port/proxy; `HTTPS_PROXY`, `HTTP_PROXY`,
`NO_PROXY`; `urls.py` reads them), `UpstreamResponse` (`response.py`: a head
whose body streams as it arrives) and
`HttpBackend` (one backend's base URL and timeouts on the shared transport: the
`backends.base.Backend` seam).

Nothing above this module sees a socket, ssl, asyncio or h11 exception:
`upstream_error` turns each into `UpstreamTimeout` or `UpstreamProtocol`
(`raise ... from exc`). A bad URL or proxy setting raises `ConfigError`.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import h11

from agentwrap.backends.response import (
    MAX_RESPONSE_HEAD_BYTES,
    READ_CHUNK_BYTES,
    Conn,
    NoResponse,
    Translating,
    UpstreamResponse,
    is_chunked,
)
from agentwrap.backends.urls import (
    DEFAULT_PORTS,
    Route,
    UpstreamProxy,
    is_loopback,
    no_proxy_matches,
    no_proxy_rules,
    open_tunnel,
    parse_proxy,
    split_url,
)
from agentwrap.protocols.endpoints import upstream_url

__all__ = ["Timeouts", "HttpTransport", "HttpBackend", "UpstreamResponse"]

CONNECT_TIMEOUT_SECONDS = 10.0  # TCP + TLS (+ CONNECT) handshake, unless a backend's timeout_s is shorter
HAPPY_EYEBALLS_DELAY_SECONDS = 0.25  # RFC 8305's recommended value
ROUTE_CACHE_ENTRIES = 256
# Hop-by-hop (RFC 9110 7.6.1) or framing: the transport sets these itself.
_DROPPED_HEADERS = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection",
                              b"keep-alive", b"proxy-connection", b"te", b"upgrade"})
_BODY_METHODS = frozenset({b"POST", b"PUT", b"PATCH"})
# RFC 9110 9.2.2: a request of these methods may be sent again after the connection failed.
IDEMPOTENT_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
_PROXY_VARS = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float = CONNECT_TIMEOUT_SECONDS  # TCP + TLS (+ CONNECT) handshake
    first_byte_s: float = 600.0  # request sent -> response head received
    read_idle_s: float = 600.0  # max gap between body chunks while we wait for one


class HttpTransport:
    """HTTP/1.1 client with a keep-alive pool per (scheme, host, port, proxy)."""

    def __init__(self, *, timeouts: Timeouts = Timeouts(), env: Mapping[str, str] | None = None,
                 max_idle_per_host: int = 64, ssl_context: ssl.SSLContext | None = None) -> None:
        source = os.environ if env is None else env
        self._env = {k: v for k, v in source.items() if k.lower() in _PROXY_VARS}
        self._no_proxy = no_proxy_rules(self._env.get("no_proxy") or self._env.get("NO_PROXY") or "")
        self._timeouts, self._max_idle = timeouts, max_idle_per_host
        self._ssl_context = ssl_context  # the default one is built on first use: it costs 30-40 ms
        self._idle: dict[tuple[object, ...], deque[Conn]] = {}
        self._active: set[Conn] = set()
        self._routes: dict[str, Route] = {}
        self._proxies: dict[str, UpstreamProxy | None] = {}  # by scheme
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
        with Translating(route.where) as tr:
            request = h11.Request(method=method_b, target=route.target, headers=fields)
            conn = self._checkout(route.key)
            if conn is not None:
                tr.timeout_s, tr.conn = t.first_byte_s, conn
                try:
                    return await self._exchange(conn, route, request, body, t)
                except NoResponse:
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

    async def _exchange(self, conn: Conn, route: Route, request: h11.Request, body: bytes,
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
                    retryable = request.method in IDEMPOTENT_METHODS
                    while (event := h.next_event()) is h11.NEED_DATA or type(event) is h11.InformationalResponse:
                        if event is h11.NEED_DATA:  # else a 1xx: wait for the real head
                            data = await reader.read(READ_CHUNK_BYTES)
                            if not data and not conn.received:
                                conn.eof = True
                                raise NoResponse() if retryable else ConnectionError()
                            conn.received, conn.eof = True, not data
                            h.receive_data(data)
                except ConnectionError as exc:
                    if conn.received or not retryable or isinstance(exc, NoResponse):
                        raise
                    raise NoResponse(*exc.args) from exc
        except BaseException:
            self._discard(conn)
            raise
        chunked = request.method != b"HEAD" and is_chunked(event)
        return UpstreamResponse(event, conn, self, route.where, t.read_idle_s, chunked)

    async def _connect(self, route: Route, connect_s: float) -> Conn:
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
                        await open_tunnel(reader, writer, route, proxy)
                        await writer.start_tls(tls, server_hostname=route.host)
                    except BaseException:
                        writer.transport.abort()
                        raise
        conn = Conn(reader, writer, route.key)
        self._active.add(conn)
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            context = ssl.create_default_context()
            context.set_alpn_protocols(["http/1.1"])
            self._ssl_context = context
        return self._ssl_context

    def _checkout(self, key: tuple[object, ...]) -> Conn | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()  # the most recently used is the least likely to be stale
            if conn.reusable():
                self._active.add(conn)
                return conn
            conn.close()
        return None

    def _release(self, conn: Conn, *, fresh: bool = False) -> None:
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

    def _discard(self, conn: Conn) -> None:
        self._active.discard(conn)
        conn.close()

    def _route(self, url: str) -> Route:
        route = self._routes.get(url)
        if route is None:
            if len(self._routes) >= ROUTE_CACHE_ENTRIES:
                self._routes.clear()
            route = self._routes[url] = self._make_route(url)
        return route

    def _make_route(self, url: str) -> Route:
        scheme, _, host, port, target = split_url(url, "upstream URL")
        authority = f"[{host}]" if ":" in host else host
        host_header = authority if port == DEFAULT_PORTS[scheme] else f"{authority}:{port}"
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
        return Route(tls=scheme == "https", host=host, port=port, authority=f"{authority}:{port}".encode(),
                      host_header=host_header.encode(), target=target.encode(), proxy=proxy,
                      extra_headers=extra, key=(scheme, host, port, proxy), where=where)

    def _proxy_for(self, scheme: str, host: str, port: int) -> UpstreamProxy | None:
        if is_loopback(host) or no_proxy_matches(self._no_proxy, host, port):
            return None
        if scheme not in self._proxies:
            names = (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY")
            name, value = next(((n, v) for n in names if (v := self._env.get(n, "").strip())), ("", ""))
            self._proxies[scheme] = parse_proxy(name, value) if value else None
        return self._proxies[scheme]


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
