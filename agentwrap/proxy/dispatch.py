"""One request in, one response out: authenticate, classify, route, forward.

The dispatcher never sees sockets: it gets the parsed request head and body
from `server.py` and returns a `ProxyResponse` whose body is bytes or an async
iterator of upstream chunks, forwarded as they arrive (no SSE buffering).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from agentwrap.config.model import BackendConfig, ProfileConfig
from agentwrap.errors import ConfigError, RequestError, UpstreamError, UpstreamTimeout
from agentwrap.protocols.codec import codec, encode_error, stream_error
from agentwrap.proxy.auth import UpstreamAuth, auth_header
from agentwrap.protocols.endpoints import classify, rewrite_gemini_model, upstream_url
from agentwrap.routing.failover import FailoverPlan, Outcome
from agentwrap.routing.router import RequestFacts, Router, SessionOverrides

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
        b"x-agentwrap-secret",  # the session secret, for agents whose base URL cannot carry it
    }
)
SECRET_HEADER = b"x-agentwrap-secret"
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
    close: Callable[[], object] | None = None  # releases the upstream response if the body is never iterated


@dataclass(slots=True)
class Stats:
    requests: int = 0
    errors: int = 0
    unauthorized: int = 0
    failovers: int = 0
    commands: int = 0
    by_backend: dict[str, int] = field(default_factory=dict)


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
        env: dict[str, str] | None = None,
        auth_for: Callable[[BackendConfig], UpstreamAuth] | None = None,
        switch_profile: Callable[[str], tuple[ProfileConfig, dict[str, UpstreamAuth], dict]] | None = None,
        profile_names: Callable[[], tuple[str, ...]] | None = None,
    ) -> None:
        self.agent = agent
        self.agent_protocol = agent_protocol
        self.transport = transport
        self.stats = Stats()
        self.recorder = None  # capture.Recorder, set by the session; every tap is guarded by `if rec`
        self.replay = None  # backends.replay.ReplayBackend, for `agentwrap replay`
        self.overrides = SessionOverrides()
        self.last_backend: str | None = None
        self.last_model: str | None = None
        self._env = env or {}
        self._auth_for = auth_for
        self._switch_profile = switch_profile
        self._profile_names = profile_names
        self._secret = secret.encode()
        self._base = (profile, auth, scripted or {})
        self._use(profile, auth, scripted or {})

    def _use(self, profile: ProfileConfig, auth: dict[str, UpstreamAuth], scripted: dict) -> None:
        self.profile = profile
        self.auth = dict(auth)
        self.scripted = scripted
        self.router = Router(profile, agent=self.agent, env=self._env)

    # -- helpers -----------------------------------------------------------

    def _error(self, protocol: str | None, error_type: str, message: str, status: int | None = None) -> ProxyResponse:
        status, body = encode_error(protocol or self.agent_protocol, error_type, message, status)
        self.stats.errors += 1
        return _json_response(status, body)

    def _record_error(self, xid: int, kind: str, message: str) -> None:
        if self.recorder:
            self.recorder.error(xid, kind, message)

    def _check_secret(self, path: bytes, headers: Headers) -> bytes | None:
        """Return the path after the secret prefix (or the whole path when the secret came in
        the `x-agentwrap-secret` header), or None if the request did not carry the secret."""
        if not path.startswith(b"/"):
            return None
        for name, value in headers:
            if name.lower() == SECRET_HEADER:
                return path if hmac.compare_digest(value, self._secret) else None
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
        rest = self._check_secret(raw_path, headers)
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

        summary = None
        # The same byte test as guards.commands.may_contain_command, without importing it per session.
        maybe_command = parsed is not None and (b"!/" in body or b"!\\/" in body)
        if parsed is not None and (self.router.needs_summary or maybe_command):
            try:
                summary = codec(protocol).summarize_request(parsed, path)
            except RequestError as exc:
                return self._error(protocol, "invalid_request", f"agentwrap: {exc}")
            if maybe_command:
                from agentwrap.guards.commands import parse_command

                command = parse_command(summary.last_user_text)
                if command is not None:
                    return self._command(xid, command, protocol, summary, model)

        facts = RequestFacts.from_wire(self.agent, model, headers, body, summary)
        decision = self.router.choose(facts, self.overrides)
        if decision is None:
            return self._error(
                protocol,
                "invalid_request",
                f"agentwrap: no route in profile {self.profile.name!r} matches this request (model {model!r}).",
            )
        rec = self.recorder
        if rec:
            rec.route(
                xid,
                {"backend": decision.backend, "model": decision.model or model, "requested_model": model,
                 "reason": decision.reason, "fallbacks": list(decision.fallbacks)},
            )
        self.last_backend, self.last_model = decision.backend, decision.model or model

        plan = FailoverPlan(decision.backend, decision.fallbacks)
        response: ProxyResponse | None = None
        while (attempt := plan.next_attempt()) is not None:
            if response is not None:
                await _discard(response)
            if attempt.delay_s:
                await asyncio.sleep(attempt.delay_s)
            backend = self.profile.backends[attempt.backend]
            self.stats.by_backend[backend.name] = self.stats.by_backend.get(backend.name, 0) + 1
            # The route's model rewrite belongs to the route's backend; fallbacks get what the agent asked for.
            rewrite = decision.model if attempt.backend == decision.backend else None
            response, outcome = await self._attempt(
                xid, backend, protocol, endpoint, method, path, query, headers, body, parsed, rewrite
            )
            verdict = plan.record(outcome, now=time.time())
            if rec and (len(plan.chain) > 1 or verdict.action != "done"):
                rec.route(xid, {"attempt": attempt.number, "backend": attempt.backend, "outcome": outcome.describe(),
                                "decision": verdict.action, "why": verdict.reason})
            if verdict.action == "retry" or verdict.action == "failover":
                self.stats.failovers += 1
        assert response is not None
        return response

    async def _attempt(
        self, xid: int, backend: BackendConfig, protocol: str, endpoint, method: bytes, path: str, query: bytes,
        headers: Headers, body: bytes, parsed, rewrite: str | None,
    ) -> tuple[ProxyResponse, Outcome]:
        """One try at one backend: the response to give the agent and how the try went."""
        if backend.type == "scripted":
            resp = self._scripted(xid, backend, protocol, endpoint, method, path, parsed)
            return resp, (Outcome.ok(resp.status) if resp.status < 400 else Outcome.http_status(resp.status, resp.headers))
        if backend.type == "replay":
            return self._replayed(xid, protocol, method, path, query, body), Outcome.ok()
        if not backend.speaks(protocol):
            if endpoint.kind != "generate" or parsed is None:
                return self._local_endpoint(protocol, method, path, body), Outcome.ok()
            return await self._translated(xid, backend, protocol, path, headers, parsed, rewrite)
        if parsed is not None and (rewrite or backend.max_output_tokens):
            out = parsed
            if rewrite:
                if endpoint.protocol == "gemini":
                    path = rewrite_gemini_model(path, rewrite)
                else:
                    out = {**parsed, "model": rewrite}
            if backend.max_output_tokens:
                from agentwrap.protocols.limits import cap_output_tokens

                out, lowered = cap_output_tokens(protocol, out, backend.max_output_tokens)
                if lowered and self.recorder:
                    self.recorder.guard(xid, _cap_note(backend, lowered))
            if out is not parsed:
                body = json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()
        return await self._forward(xid, backend, protocol, method, path, query, headers, body)

    def _local_endpoint(self, protocol: str, method: bytes, path: str, body: bytes) -> ProxyResponse:
        """Side endpoints of the agent's protocol that a backend of another protocol does not have."""
        if path.endswith("/api/hello"):
            return ProxyResponse(200, [(b"content-type", b"application/json")], b"{}")
        if path.endswith("/count_tokens"):
            return _json_response(200, json.dumps({"input_tokens": max(1, len(body) // 4)}).encode())
        if path.endswith(":countTokens"):
            return _json_response(200, json.dumps({"totalTokens": max(1, len(body) // 4)}).encode())
        return self._error(protocol, "not_found", f"agentwrap: {method.decode()} {path} has no equivalent on this route's backend")

    async def _translated(
        self, xid: int, backend: BackendConfig, protocol: str, path: str, headers: Headers, parsed: dict, rewrite: str | None
    ) -> tuple[ProxyResponse, Outcome]:
        """Forward a model call to a backend of another protocol: translate the request,
        then the answer (streamed event by event, or whole)."""
        from agentwrap.protocols.limits import output_limits
        from agentwrap.protocols.sse import is_sse
        from agentwrap.protocols.translate import StreamTranslator, translate_request, translate_response

        cap = backend.max_output_tokens
        try:
            up_path, up_body, ctx = translate_request(
                protocol, parsed, path, backend.protocol, rewrite, created=int(time.time()), max_tokens_cap=cap
            )
        except RequestError as exc:
            self._record_error(xid, "translation", str(exc))
            return self._error(protocol, "invalid_request", f"agentwrap: cannot translate this request for {backend.name!r}: {exc}"), Outcome.http_status(400)
        auth = self._auth(backend)
        # Only what the backend's protocol understands goes across: the agent's own
        # protocol headers (anthropic-*, x-goog-*, codex session headers) and auth stay behind.
        out: Headers = [(n, v) for n, v in headers if n.lower() == b"user-agent"]
        out += ctx.upstream_headers
        out.append(ACCEPT_IDENTITY)
        out += [(n.lower().encode(), v.encode()) for n, v in backend.headers]
        if auth.header is not None:
            out.append(auth.header)
        url = upstream_url(backend.protocol, backend.base_url or "", up_path)
        data = json.dumps(up_body, ensure_ascii=False, separators=(",", ":")).encode()
        rec = self.recorder
        if rec and ctx.notes:
            rec.guard(xid, {"guard": "translation", "notes": list(ctx.notes)})
        if rec and cap:
            # translate_request lowers a larger limit to the cap and sets the cap where the request has none.
            name, requested = next(iter(output_limits(protocol, parsed).items()), ("max_tokens", None))
            if requested is None or requested > cap:
                rec.guard(xid, _cap_note(backend, {name: requested}))
        resp, failed = await self._send(xid, backend, protocol, "POST", url, out, data)
        if failed is not None:
            return failed
        if resp.status >= 400 or not is_sse(resp.headers):
            try:
                raw = await resp.aread()
            except UpstreamError as exc:
                self._record_error(xid, "upstream_body", str(exc))
                return self._error(protocol, "upstream_unreachable", f"agentwrap: upstream {backend.name!r} failed: {exc}"), Outcome.protocol_error(str(exc))
            finally:
                await resp.aclose()
            if rec:
                rec.chunk(xid, raw)
            translated = translate_response(ctx, resp.status, raw, resp.headers)
            if translated.status >= 400:
                self.stats.errors += 1
            outcome = Outcome.ok(resp.status) if resp.status < 400 else Outcome.http_status(resp.status, resp.headers)
            return ProxyResponse(translated.status, list(translated.headers), translated.body), outcome
        translator = StreamTranslator(ctx)
        headers_out = [(b"content-type", translator.content_type.encode()), (b"cache-control", b"no-cache")]
        return (
            ProxyResponse(200, headers_out, self._relay_translated(xid, resp, translator), local=False, close=resp.aclose),
            Outcome.ok(resp.status),
        )

    async def _relay_translated(self, xid: int, resp, translator) -> AsyncIterator[bytes]:
        """Backend SSE in, agent SSE out, event by event; a failure ends in the agent's error event."""
        rec = self.recorder
        try:
            try:
                async for chunk in resp.aiter_raw():
                    if rec:
                        rec.chunk(xid, chunk)
                    out = translator.feed(chunk)
                    if out:
                        if rec:
                            rec.agent_chunk(xid, out)
                        yield out
                tail = translator.finish()
            except UpstreamError as exc:
                self.stats.errors += 1
                if rec:
                    rec.error(xid, "upstream_stream", str(exc))
                kind = "timeout" if isinstance(exc, UpstreamTimeout) else "api_error"
                tail = translator.abort(kind, f"agentwrap: upstream stream failed: {exc}")
            if tail:
                if rec:
                    rec.agent_chunk(xid, tail)
                yield tail
        finally:
            if rec:
                rec.end(xid)
            await resp.aclose()

    async def _send(self, xid: int, backend: BackendConfig, protocol: str, method: str, url: str, headers: Headers, body: bytes):
        """Send upstream: (response, None), or (None, (the agent's error response, outcome))."""
        rec = self.recorder
        if rec:
            rec.upstream_request(xid, method, url, headers, body)
        try:
            resp = await self.transport.request(method, url, headers, body, timeouts=self._timeouts(backend))
        except (UpstreamError, ConfigError) as exc:  # ConfigError: e.g. an unsupported HTTPS_PROXY scheme
            kind = "timeout" if isinstance(exc, UpstreamTimeout) else "upstream_unreachable"
            self._record_error(xid, kind, str(exc))
            outcome = Outcome.timeout(str(exc)) if kind == "timeout" else Outcome.connect_error(str(exc))
            return None, (self._error(protocol, kind, f"agentwrap: upstream {backend.name!r} failed: {exc}"), outcome)
        if rec:
            rec.upstream_response(xid, resp.status, resp.headers)
        return resp, None

    def _auth(self, backend: BackendConfig) -> UpstreamAuth:
        auth = self.auth.get(backend.name)
        if auth is None:  # a backend no route names (reached through !/backend): resolved on first use
            auth = self.auth[backend.name] = self._auth_for(backend) if self._auth_for else UpstreamAuth(None, False)
        return auth

    @staticmethod
    def _timeouts(backend: BackendConfig):
        if not backend.timeout_s:
            return None
        from agentwrap.backends.http import Timeouts

        return Timeouts(first_byte_s=backend.timeout_s, read_idle_s=backend.timeout_s)

    def _replayed(self, xid: int, protocol: str, method: bytes, path: str, query: bytes, body: bytes) -> ProxyResponse:
        """Serve the recorded answer to this request; a request with none gets a protocol-shaped error."""
        target = path + ("?" + query.decode("latin-1") if query else "")
        reply = self.replay.respond(method.decode(), target, body)
        if reply is None:
            divergence = self.replay.divergences[-1]
            self._record_error(xid, "replay_divergence", str(divergence))
            return self._error(protocol, "invalid_request", f"agentwrap replay: {divergence}")
        headers = [
            (n.encode("latin-1"), v.encode("latin-1"))
            for n, v in reply.headers
            if n.lower().encode("latin-1") not in HOP_BY_HOP
        ]
        data = b"".join(reply.chunks)
        if self.recorder:
            self.recorder.upstream_response(xid, reply.status, headers)
            self.recorder.chunk(xid, data)
        return ProxyResponse(reply.status, headers, data)

    def _command(self, xid: int, command, protocol: str, summary, model: str | None) -> ProxyResponse:
        """Answer an in-chat command ourselves, as an assistant message in the agent's protocol."""
        from agentwrap.guards.commands import CommandContext, apply_command, reply_events

        ctx = CommandContext(
            profile=self.profile.name,
            backend=self.last_backend,
            model=self.last_model,
            overrides=self.overrides,
            requests=self.stats.requests,
            backends=tuple(self.profile.backends),
            profiles=self._profile_names() if self._switch_profile and self._profile_names else (),
            models=tuple(m for b in self.profile.backends.values() for m in (b.models or {})),
        )
        text, overrides = apply_command(command, ctx)
        if overrides.profile and overrides.profile != self.overrides.profile and self._switch_profile:
            try:
                self._use(*self._switch_profile(overrides.profile))
            except ConfigError as exc:
                text, overrides = f"agentwrap: cannot switch to profile {overrides.profile!r}: {exc}", self.overrides
        elif command.name == "reset" and self.profile is not self._base[0]:
            self._use(*self._base)
        self.overrides = overrides
        if self.recorder:
            self.recorder.guard(xid, {"guard": "command", "command": command.name, "arg": command.arg})
        self.stats.commands += 1
        c = codec(protocol)
        events = reply_events(text, summary.model or model or "agentwrap")
        response_id = f"msg_agentwrap_{xid or self.stats.requests}"
        if summary.stream:
            enc = c.StreamEncoder(summary.model or model or "agentwrap", response_id)
            data = b"".join(enc.feed(e) for e in events) + enc.finish()
            return ProxyResponse(200, [(b"content-type", enc.content_type.encode()), (b"cache-control", b"no-cache")], data)
        doc = c.encode_response(events, summary.model or model or "agentwrap", response_id)
        return _json_response(200, json.dumps(doc).encode())

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
    ) -> tuple[ProxyResponse, Outcome]:
        from agentwrap.protocols.sse import is_sse

        auth = self._auth(backend)
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

        resp, failed = await self._send(xid, backend, protocol, method.decode(), url, out, body)
        if failed is not None:
            return failed
        if resp.status >= 400:
            self.stats.errors += 1
        resp_headers: Headers = []
        for name, value in resp.headers:
            lname = name.lower()
            if lname in HOP_BY_HOP and lname != b"content-length":
                continue
            resp_headers.append((lname, value))
        sse = is_sse(resp_headers)
        outcome = Outcome.ok(resp.status) if resp.status < 400 else Outcome.http_status(resp.status, resp.headers)
        if method == b"HEAD":
            await resp.aclose()
            return ProxyResponse(resp.status, resp_headers, b"", local=False), outcome
        relay = self._relay(xid, resp, protocol, sse, resp_headers)
        return ProxyResponse(resp.status, resp_headers, relay, local=False, close=resp.aclose), outcome

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
            extra = prefix + stream_error(protocol, kind, f"agentwrap: upstream stream failed: {exc}")
            if rec:
                rec.agent_chunk(xid, extra)
            yield extra
        finally:
            if rec:
                rec.end(xid)
            await resp.aclose()


def _cap_note(backend: BackendConfig, lowered: dict[str, int | None]) -> dict:
    """The capture record of a `max_output_tokens` adjustment (a None value: the request set no limit)."""
    return {"guard": "max_output_tokens", "backend": backend.name, "cap": backend.max_output_tokens, "lowered": lowered}


async def _discard(response: ProxyResponse) -> None:
    """Drop a response that will not reach the agent (an attempt that is retried elsewhere)."""
    body = response.body
    if not isinstance(body, (bytes, bytearray)):
        await body.aclose()  # an async generator that never started runs no `finally`, hence:
    if response.close is not None:
        await response.close()
