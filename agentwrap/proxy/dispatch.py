"""One request in, one response out: authenticate, classify, route, forward.

The dispatcher never sees sockets: it gets the parsed request head and body
from `server.py` and returns a `ProxyResponse` whose body is bytes or an async
iterator of upstream chunks, forwarded as they arrive (no SSE buffering).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from agentwrap.config.model import BackendConfig, ProfileConfig
from agentwrap.errors import ConfigError, RequestError, UpstreamError, UpstreamTimeout
from agentwrap.protocols import wire
from agentwrap.protocols.endpoints import classify, rewrite_gemini_model, upstream_url
from agentwrap.routing import choose_route, needs_summary

__all__ = ["Dispatcher", "ProxyResponse", "Stats", "UpstreamAuth", "HOP_BY_HOP", "auth_header"]

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)
AUTH_HEADERS = frozenset({b"authorization", b"x-api-key", b"x-goog-api-key"})
# Between agentwrap and the upstream the body stays uncompressed, so taps
# (capture, guards) can read it; the agent is on loopback, where compression buys nothing.
ACCEPT_IDENTITY = (b"accept-encoding", b"identity")


@dataclass(slots=True)
class ProxyResponse:
    status: int
    headers: Headers
    body: bytes | AsyncIterator[bytes] = b""
    local: bool = True  # made by agentwrap (error, scripted), not relayed from an upstream


@dataclass(slots=True)
class Stats:
    requests: int = 0
    errors: int = 0
    unauthorized: int = 0
    in_flight: int = 0
    by_backend: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UpstreamAuth:
    """The credential agentwrap puts on upstream requests for one backend.

    `header` is None when the agent's own auth passes through (or no auth is needed).
    """

    header: tuple[bytes, bytes] | None
    strip_agent_auth: bool


def auth_header(protocol: str, scheme: str, key: str) -> tuple[bytes, bytes]:
    """The header a backend of `protocol` expects for `key`; `scheme` is the key's own kind."""
    if protocol == "anthropic_messages":
        if scheme == "bearer":
            return (b"authorization", b"Bearer " + key.encode())
        return (b"x-api-key", key.encode())
    if protocol == "gemini":
        return (b"x-goog-api-key", key.encode())
    return (b"authorization", b"Bearer " + key.encode())


def _json_response(status: int, body: bytes, extra: Headers = ()) -> ProxyResponse:
    return ProxyResponse(status, [(b"content-type", b"application/json"), *extra], body)


class Dispatcher:
    """Routes the agent's requests for one session.

    `transport` is the upstream HTTP client (`backends.http.HttpTransport`);
    `scripted` maps backend name -> a scripted backend with `respond(...)`.
    """

    def __init__(
        self,
        *,
        agent: str,
        agent_protocol: str,
        secret: str,
        profile: ProfileConfig,
        auth: dict[str, UpstreamAuth],
        transport,
        scripted: dict | None = None,
    ) -> None:
        self.agent = agent
        self.agent_protocol = agent_protocol
        self.profile = profile
        self.auth = auth
        self.transport = transport
        self.scripted = scripted or {}
        self.stats = Stats()
        self.recorder = None  # capture.Recorder, set by the session; every tap is guarded by `if rec`
        self._secret = secret.encode()
        self._summarise = needs_summary(profile)

    # -- helpers -----------------------------------------------------------

    def _error(self, protocol: str | None, error_type: str, message: str, status: int | None = None) -> ProxyResponse:
        status, body = wire.encode_error(protocol or self.agent_protocol, error_type, message, status)
        self.stats.errors += 1
        return _json_response(status, body)

    def _record_error(self, xid: int, kind: str, message: str) -> None:
        if self.recorder:
            self.recorder.error(xid, kind, message)

    def _check_secret(self, path: bytes) -> bytes | None:
        """Return the path after the secret prefix, or None if the secret is missing."""
        if not path.startswith(b"/"):
            return None
        first, sep, rest = path[1:].partition(b"/")
        ok = hmac.compare_digest(first, self._secret)
        if not ok:
            return None
        return b"/" + rest if sep else b"/"

    # -- the request path -----------------------------------------------------

    async def handle(self, method: bytes, target: bytes, headers: Headers, body: bytes) -> ProxyResponse:
        self.stats.requests += 1
        rec = self.recorder
        xid = rec.exchange(method.decode("latin-1"), target.decode("latin-1"), headers, body) if rec else 0
        response = await self._handle(xid, method, target, headers, body)
        if rec and not isinstance(response.body, (bytes, bytearray)):
            return response  # streamed: the relay records chunks and ends the exchange
        if rec:
            if response.local:
                rec.agent_response(xid, response.status, response.headers, response.body)
            rec.end(xid)
        return response

    async def _handle(self, xid: int, method: bytes, target: bytes, headers: Headers, body: bytes) -> ProxyResponse:
        raw_path, _, query = target.partition(b"?")
        rest = self._check_secret(raw_path)
        if rest is None:
            self.stats.unauthorized += 1
            return self._error(
                None, "authentication", "agentwrap: this proxy needs its session secret; the request did not carry it."
            )
        path = rest.decode("latin-1")
        endpoint = classify(path)
        protocol = endpoint.protocol or self.agent_protocol

        parsed = None
        model = endpoint.model
        if endpoint.kind == "generate":
            try:
                parsed = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                return self._error(protocol, "invalid_request", f"agentwrap: request body is not valid JSON ({exc})")
            if not isinstance(parsed, dict):
                return self._error(protocol, "invalid_request", "agentwrap: request body must be a JSON object")
            if model is None:
                m = parsed.get("model")
                model = m if isinstance(m, str) else None

        tools = thinking = None
        if self._summarise and parsed is not None:
            try:
                s = wire.codec(protocol).summarize_request(parsed, path)
            except RequestError as exc:
                return self._error(protocol, "invalid_request", f"agentwrap: {exc}")
            tools, thinking = bool(s.tools), s.thinking

        decision = choose_route(self.profile, self.agent, model, tools=tools, thinking=thinking)
        if decision is None:
            return self._error(
                protocol,
                "invalid_request",
                f"agentwrap: no route in profile {self.profile.name!r} matches this request (model {model!r}).",
            )
        backend = self.profile.backends[decision.backend]
        self.stats.by_backend[backend.name] = self.stats.by_backend.get(backend.name, 0) + 1
        if self.recorder:
            self.recorder.route(
                xid, {"backend": backend.name, "model": decision.model or model, "requested_model": model, "reason": decision.reason}
            )

        if backend.type == "scripted":
            return self._scripted(xid, backend, protocol, endpoint, method, path, parsed)

        if not backend.speaks(protocol):
            return self._error(
                protocol,
                "invalid_request",
                f"agentwrap: backend {backend.name!r} speaks {backend.protocol}, this request is {protocol}; "
                "translation between protocols is not available yet.",
            )

        if decision.model and parsed is not None:
            if endpoint.protocol == "gemini":
                path = rewrite_gemini_model(path, decision.model)
            else:
                parsed["model"] = decision.model
                body = json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode()

        return await self._forward(xid, backend, protocol, method, path, query, headers, body)

    def _scripted(self, xid: int, backend: BackendConfig, protocol: str, endpoint, method: bytes, path: str, parsed) -> ProxyResponse:
        reply = self.scripted[backend.name].respond(protocol, method.decode(), path, parsed)
        if reply.status >= 400:
            self.stats.errors += 1
        headers = [(b"content-type", reply.content_type.encode())]
        body = reply.body
        # Recorded whole, as the upstream leg of this exchange: replay serves it back the same way.
        rec = self.recorder
        if rec:
            rec.upstream_response(xid, reply.status, headers)
            rec.chunk(xid, body)
        if not reply.stream:
            return ProxyResponse(reply.status, headers, body)
        return ProxyResponse(reply.status, headers, self._iter_scripted(xid, reply.chunks))

    async def _iter_scripted(self, xid: int, chunks: list[bytes]) -> AsyncIterator[bytes]:
        try:
            for c in chunks:
                yield c
        finally:
            if self.recorder:
                self.recorder.end(xid)

    async def _forward(
        self, xid: int, backend: BackendConfig, protocol: str, method: bytes, path: str, query: bytes, headers: Headers, body: bytes
    ) -> ProxyResponse:
        auth = self.auth.get(backend.name) or UpstreamAuth(None, False)
        out: Headers = []
        for name, value in headers:
            lname = name.lower()
            if lname in HOP_BY_HOP or lname == b"accept-encoding":
                continue
            if auth.strip_agent_auth and lname in AUTH_HEADERS:
                continue
            out.append((lname, value))
        out.append(ACCEPT_IDENTITY)
        for name, value in backend.headers:
            out.append((name.lower().encode(), value.encode()))
        if auth.header is not None:
            out.append(auth.header)
        if query and auth.strip_agent_auth:
            # Gemini clients may carry the key as `?key=`; in key mode it is our secret, not the provider's.
            pairs = [(k, v) for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if k != "key"]
            query = urlencode(pairs).encode()
        target = path + ("?" + query.decode("latin-1") if query else "")
        url = upstream_url(backend.protocol or protocol, backend.base_url or "", target)

        timeouts = None
        if backend.timeout_s:
            from agentwrap.backends.http import Timeouts

            timeouts = Timeouts(first_byte_s=backend.timeout_s, read_idle_s=backend.timeout_s)
        rec = self.recorder
        if rec:
            rec.upstream_request(xid, method.decode(), url, out, body)
        try:
            resp = await self.transport.request(method.decode(), url, out, body, timeouts=timeouts)
        except (UpstreamError, ConfigError) as exc:  # ConfigError: e.g. an unsupported HTTPS_PROXY scheme
            kind = "timeout" if isinstance(exc, UpstreamTimeout) else "upstream_unreachable"
            self._record_error(xid, kind, str(exc))
            return self._error(protocol, kind, f"agentwrap: upstream {backend.name!r} failed: {exc}")

        if resp.status >= 400:
            self.stats.errors += 1
        if rec:
            rec.upstream_response(xid, resp.status, resp.headers)
        resp_headers: Headers = []
        is_sse = False
        for name, value in resp.headers:
            lname = name.lower()
            if lname in HOP_BY_HOP and lname != b"content-length":
                continue
            if lname == b"content-type" and value.startswith(b"text/event-stream"):
                is_sse = True
            resp_headers.append((lname, value))
        if method == b"HEAD":
            await resp.aclose()
            return ProxyResponse(resp.status, resp_headers, b"", local=False)
        return ProxyResponse(resp.status, resp_headers, self._relay(xid, resp, protocol, is_sse, resp_headers), local=False)

    async def _relay(self, xid: int, resp, protocol: str, is_sse: bool, resp_headers: Headers) -> AsyncIterator[bytes]:
        """Yield upstream body chunks as they arrive; close the agent's stream properly on failure."""
        tail = b"\n\n"
        rec = self.recorder
        try:
            async for chunk in resp.aiter_raw():
                if chunk:
                    tail = chunk[-2:]
                    if rec:
                        rec.chunk(xid, chunk)
                    yield chunk
        except UpstreamError as exc:
            self.stats.errors += 1
            if rec:
                rec.error(xid, "upstream_stream", str(exc))
            if not is_sse or any(n == b"content-length" for n, _ in resp_headers):
                raise  # the connection handler aborts the response: the agent sees a truncated body
            # Finish the partial SSE event (if any) and tell the agent in its own protocol.
            kind = "timeout" if isinstance(exc, UpstreamTimeout) else "api_error"
            prefix = b"" if tail.endswith(b"\n\n") or tail == b"\n" else b"\n\n"
            extra = prefix + wire.stream_error(protocol, kind, f"agentwrap: upstream stream failed: {exc}")
            if rec:
                rec.agent_chunk(xid, extra)
            yield extra
        finally:
            if rec:
                rec.end(xid)
            await resp.aclose()



