"""One try at one backend: build the leg, send it through the `Backend` seam, shape the answer.

A leg is pass-through when the backend speaks the agent's protocol (the
agent's request with the route's model and agentwrap's credential, the
answer relayed as received) and translated otherwise (the request and the
answer translated between the two protocols). Either way the result is the
response for the agent and the attempt's `Outcome` for the failover plan.
Addons see the leg before it is sent (`upstream_request`) and the response
head as it arrives (`upstream_response`). I/O only through `backend.send`.
"""

from __future__ import annotations

import time

from agentwrap.backends.base import UpstreamRequest
from agentwrap.errors import ConfigError, RequestError, UpstreamError, UpstreamTimeout
from agentwrap.protocols.endpoints import has_dot_segment, rewrite_gemini_model
from agentwrap.proxy import local
from agentwrap.proxy.flow import Flow, ProxyResponse
from agentwrap.proxy.headers import PASS_THROUGH, TRANSLATED, relayed_headers, upstream_headers, upstream_target
from agentwrap.proxy.relay import passthrough, redacting, relay
from agentwrap.proxy.routes import Upstream
from agentwrap.routing.failover import Outcome

__all__ = ["Leg", "attempt", "MAX_WHOLE_ANSWER_BYTES"]

# A whole (not streamed) answer is read whole only up to this size, to be guarded or translated:
# a larger one is relayed unguarded (same protocol) or refused with 502 (another protocol), so
# agentwrap never holds a huge answer, let alone copies of it.
MAX_WHOLE_ANSWER_BYTES = 32 * 1024 * 1024


class Leg(UpstreamRequest):
    """The upstream request of one attempt, with the backend's config and, for a
    translated leg, the translation's context (`ctx`, None on a pass-through leg)."""

    __slots__ = ("config", "ctx")

    def __init__(self, config, ctx, method: str, url: str, headers, protocol: str, target: str, *,
                 body: bytes | None = None, json=None) -> None:
        super().__init__(method, url, headers, protocol, target, body=body, json=json)
        self.config = config
        self.ctx = ctx

    @property
    def translated(self) -> bool:
        return self.ctx is not None


def _passthrough_leg(flow: Flow, up: Upstream, rewrite: str | None) -> Leg:
    path, payload = flow.path, flow.parsed
    if payload is not None and rewrite:
        if flow.protocol == "gemini":
            path = rewrite_gemini_model(path, rewrite)
        else:
            payload = {**payload, "model": rewrite}
    target = upstream_target(path, flow.query, up.auth)
    headers = upstream_headers(flow.headers, policy=PASS_THROUGH, backend=up.config, auth=up.auth)
    return Leg(up.config, None, flow.method.decode(), up.backend.url(flow.protocol, target), headers, flow.protocol, target,
               body=flow.body if payload is flow.parsed else None, json=payload)


def _translated_leg(flow: Flow, up: Upstream, rewrite: str | None) -> Leg:
    """Raises RequestError when the request holds something the backend's protocol cannot take."""
    from agentwrap.protocols.translate import translate_request

    config = up.config
    path, payload, ctx = translate_request(flow.protocol, flow.parsed, flow.path, config.protocol, rewrite,
                                           created=int(time.time()), max_tokens_cap=config.max_output_tokens)
    if has_dot_segment(path.partition("?")[0]):  # a Gemini path carries the model the agent named
        raise RequestError(f"the model would make the upstream path {path!r}, which leaves the backend's base URL")
    if ctx.notes:
        flow.note({"guard": "translation", "notes": list(ctx.notes)})
    headers = upstream_headers(flow.headers, policy=TRANSLATED, backend=config, auth=up.auth, extra=ctx.upstream_headers)
    return Leg(config, ctx, "POST", up.backend.url(config.protocol, path), headers, config.protocol, path, json=payload)


async def attempt(flow: Flow, up: Upstream, rewrite: str | None, addons, redactor) -> tuple[ProxyResponse, Outcome]:
    """Try backend `up` once. `rewrite` is the route's model for it (None: as the agent asked)."""
    config = up.config
    if config.speaks(flow.protocol):
        leg = _passthrough_leg(flow, up, rewrite)
    elif flow.parsed is None:
        return local.side_endpoint(flow), Outcome.ok()
    else:
        try:
            leg = _translated_leg(flow, up, rewrite)
        except RequestError as exc:
            addons.error(flow, "translation", str(exc))
            message = f"agentwrap: cannot translate this request for {config.name!r}: {exc}"
            return local.error(flow.protocol, "invalid_request", message), Outcome.http_status(400)
    addons.upstream_request(flow, leg)
    try:
        resp = await up.backend.send(leg)
    except (UpstreamError, ConfigError) as exc:  # ConfigError: e.g. an unsupported HTTPS_PROXY scheme
        kind = "timeout" if isinstance(exc, UpstreamTimeout) else "upstream_unreachable"
        addons.error(flow, kind, str(exc))
        outcome = Outcome.timeout(str(exc)) if kind == "timeout" else Outcome.connect_error(str(exc))
        return local.error(flow.protocol, kind, f"agentwrap: upstream {config.name!r} failed: {exc}"), outcome
    addons.upstream_response(flow, resp.status, resp.headers)
    if problem := getattr(resp, "error", None):  # an in-memory backend's own report (a replay divergence)
        addons.error(flow, *problem)
    # A replayed answer was the final one in its run: never retried here.
    outcome = Outcome.ok(resp.status) if getattr(resp, "final", False) else Outcome.of(resp.status, resp.headers)
    if leg.ctx is None:
        return await _relayed(flow, resp, addons, redactor), outcome
    return await _translated(flow, leg, resp, addons, redactor, outcome)


async def _relayed(flow: Flow, resp, addons, redactor) -> ProxyResponse:
    headers, sse, sized = relayed_headers(resp.headers)
    if flow.method == b"HEAD":
        await resp.aclose()
        return ProxyResponse(resp.status, headers, b"", relayed=True)
    filters = addons.stream(flow) if resp.status < 400 else []
    if not filters:  # today's raw relay, byte for byte
        body = relay(flow, resp, passthrough(flow.protocol, sse and not sized, redactor), addons)
        return ProxyResponse(resp.status, headers, body, relayed=True, close=resp.aclose)
    if sse:
        from agentwrap.protocols.tap import StreamTap

        tap = flow.guarded = StreamTap(flow.protocol, filters, id_hint=f"aw{flow.xid}")
        headers = [(n, v) for n, v in headers if n != b"content-length"]
        body = relay(flow, resp, redacting(tap, redactor), addons)
        return ProxyResponse(resp.status, headers, body, relayed=True, close=resp.aclose)
    from agentwrap.protocols.filters import filter_response

    raw = await _read_whole(flow, resp, addons, limit=MAX_WHOLE_ANSWER_BYTES)
    if isinstance(raw, ProxyResponse):
        return raw
    if isinstance(raw, list):  # larger than a whole answer should be: relayed as it comes, unguarded
        addons.error(flow, "guards_skipped", f"a whole answer over {MAX_WHOLE_ANSWER_BYTES >> 20} MiB is relayed without guards")
        body = relay(flow, _Prefixed(raw, resp), passthrough(flow.protocol, False, redactor), addons)
        return ProxyResponse(resp.status, headers, body, relayed=True, close=resp.aclose)
    data = _json_of(raw)
    if data is _NOT_JSON:  # an SDK would crash on it: say what happened, in the agent's protocol
        addons.error(flow, "upstream_body", "the upstream answered a model call with a body that is not JSON")
        return local.error(flow.protocol, "api_error", "agentwrap: the upstream answered with a body that is not JSON", 502)
    out = filter_response(flow.protocol, raw, filters, notes=(notes := []), data=data)
    flow.guarded = notes
    if out is raw:
        return ProxyResponse(resp.status, headers, raw, relayed=True)
    return ProxyResponse(resp.status, [(n, v) for n, v in headers if n != b"content-length"], out)


_NOT_JSON = object()


def _json_of(raw: bytes):
    """`raw` parsed as JSON, or `_NOT_JSON`."""
    import json

    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _NOT_JSON


class _Prefixed:
    """A response whose first pieces were read already: they come first, then the rest."""

    def __init__(self, first: list[bytes], resp) -> None:
        self._first, self._resp = first, resp
        self.status, self.headers = resp.status, resp.headers

    async def aiter_raw(self):
        for piece in self._first:
            yield piece
        self._first = []
        async for piece in self._resp.aiter_raw():
            yield piece

    async def aclose(self) -> None:
        await self._resp.aclose()


async def _read_whole(flow: Flow, resp, addons, name: str = "", limit: int | None = None) -> bytes | list | ProxyResponse:
    """The whole upstream body (recorded as one upstream piece), or the agent's error response.
    With `limit`: more than `limit` bytes come back as the list of pieces read so far, the
    response left open (the caller relays the rest)."""
    pieces: list[bytes] = []
    size = 0
    try:
        async for piece in resp.aiter_raw():
            pieces.append(piece)
            size += len(piece)
            if limit is not None and size > limit:
                return pieces
    except UpstreamError as exc:
        await resp.aclose()
        addons.error(flow, "upstream_body", str(exc))
        message = f"agentwrap: upstream {name or 'backend'} failed: {exc}"
        return local.error(flow.protocol, "upstream_unreachable", message)
    await resp.aclose()
    raw = b"".join(pieces)
    addons.chunk(flow, raw)  # the whole body, as one upstream piece
    return raw


async def _translated(flow: Flow, leg: Leg, resp, addons, redactor, outcome: Outcome) -> tuple[ProxyResponse, Outcome]:
    """The agent's answer to a translated call: streamed event by event, or whole."""
    from agentwrap.protocols.translate import StreamTranslator, translate_response

    _, sse, _ = relayed_headers(resp.headers)
    filters = addons.stream(flow) if resp.status < 400 else []
    if resp.status < 400 and sse:
        translator = StreamTranslator(leg.ctx, filters)
        if filters:
            flow.guarded = translator
        headers = [(b"content-type", translator.content_type.encode()), (b"cache-control", b"no-cache")]
        body = relay(flow, resp, redacting(translator, redactor), addons)
        return ProxyResponse(200, headers, body, close=resp.aclose), outcome
    raw = await _read_whole(flow, resp, addons, repr(leg.config.name), limit=MAX_WHOLE_ANSWER_BYTES)
    if isinstance(raw, ProxyResponse):
        return raw, Outcome.protocol_error("the upstream body could not be read")
    if isinstance(raw, list):
        await resp.aclose()
        message = (f"agentwrap: the answer of {leg.config.name!r} is over {MAX_WHOLE_ANSWER_BYTES >> 20} MiB, too large to "
                   "translate whole; ask for a streamed answer")
        addons.error(flow, "upstream_body", message)
        return local.error(flow.protocol, "api_error", message, 502), Outcome.ok(502)
    notes: list = []
    translated = translate_response(leg.ctx, resp.status, raw, resp.headers, filters, notes=notes)
    if filters:
        flow.guarded = notes
    return ProxyResponse(translated.status, list(translated.headers), translated.body), outcome
