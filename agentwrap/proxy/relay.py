"""The one relay: an upstream body to the agent, piece by piece, through a pipeline.

A pipeline has three verbs: `feed(bytes) -> bytes` per upstream piece,
`finish() -> bytes` at the end of the upstream body, and `abort(kind,
message) -> bytes | None` when the upstream fails mid-body (the tail that ends
the agent's stream properly, or None: nothing can, cut the connection).
`Passthrough` is the identity (the upstream's own bytes, unchanged, copied
never); `protocols.translate.StreamTranslator` re-encodes a backend's stream
in the agent's protocol. Both end the same way on failure: the relay reports
the error, asks the pipeline for its tail, sends it, and ends the flow.

Keys: when agentwrap holds provider keys, the pipeline replaces each one in
everything it puts out (`KeyedPassthrough`, `Redacting`; an upstream may
echo the key it received, in an error message or a stream's text) with a
marker of the same length, so a Content-Length stays true. A piece's tail
that could begin a key waits for the next piece; nothing else is delayed.
Without keys the pipelines do no work for them. Headers and whole bodies
are redacted by `redact_response`.

Per piece, the relay calls the addons' `chunk` hooks with what the upstream
sent and, when the pipeline changed it, their `agent_chunk` hooks with what
the agent gets. No socket here: the server iterates the relay.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from agentwrap.capture.redact import Redactor, StreamRedactor
from agentwrap.errors import UpstreamError, UpstreamTimeout
from agentwrap.protocols import codec as wire
from agentwrap.proxy.flow import Flow, ProxyResponse

__all__ = ["KEEP_BYTES", "Passthrough", "KeyedPassthrough", "Redacting", "passthrough", "redacting", "relay", "redact_response", "error_kind"]


# A tap's output is kept (references, not copies) while it is the upstream's bytes, to
# record the agent's stream whole should a filter rewrite it later; past this many bytes
# the agent's stream is recorded as it goes instead, so a long stream keeps nothing.
KEEP_BYTES = 1 << 20


def error_kind(exc: UpstreamError) -> str:
    """The agent protocol's error type for an upstream failure."""
    return "timeout" if isinstance(exc, UpstreamTimeout) else "api_error"


class Passthrough:
    """The upstream's bytes, unchanged. `sse`: the body is an SSE stream without a
    Content-Length, which a failure can close with the protocol's own error event."""

    __slots__ = ("protocol", "sse", "_last")
    held = 0  # upstream bytes that `finish` or `abort` releases late (before agentwrap's own)

    def __init__(self, protocol: str, sse: bool) -> None:
        self.protocol = protocol
        self.sse = sse
        self._last = b"\n\n"  # the last piece (a reference, not a copy)

    def feed(self, data: bytes) -> bytes:
        self._last = data
        return data

    def finish(self) -> bytes:
        return b""

    def abort(self, error_type: str, message: str) -> bytes | None:
        """Finish the partial SSE event (if any) and append the protocol's error event;
        None for any other body (the agent must see it cut)."""
        if not self.sse:
            return None
        tail = self._last[-2:]
        prefix = b"" if tail.endswith(b"\n\n") or tail == b"\n" else b"\n\n"
        return prefix + wire.stream_error(self.protocol, error_type, message)


class KeyedPassthrough(Passthrough):
    """`Passthrough` with every key agentwrap holds replaced (see the module docstring)."""

    __slots__ = ("_scrub", "held")

    def __init__(self, protocol: str, sse: bool, redactor: Redactor) -> None:
        super().__init__(protocol, sse)
        self._scrub = StreamRedactor(redactor)
        self.held = 0

    def feed(self, data: bytes) -> bytes:
        self._last = data
        return self._scrub.feed(data)

    def finish(self) -> bytes:
        held = self._scrub.finish()
        self.held = len(held)
        return held

    def abort(self, error_type: str, message: str) -> bytes | None:
        tail = super().abort(error_type, message)
        if tail is None:
            return None
        held = self._scrub.finish()
        self.held = len(held)
        return held + tail


class Redacting:
    """Any pipeline, with every key agentwrap holds replaced in what it puts out."""

    __slots__ = ("_inner", "_scrub")

    def __init__(self, inner, redactor: Redactor) -> None:
        self._inner = inner
        self._scrub = StreamRedactor(redactor)

    def feed(self, data: bytes) -> bytes:
        return self._scrub.feed(self._inner.feed(data))

    def finish(self) -> bytes:
        return self._scrub.feed(self._inner.finish()) + self._scrub.finish()

    def abort(self, error_type: str, message: str) -> bytes | None:
        tail = self._inner.abort(error_type, message)
        return None if tail is None else self._scrub.feed(tail) + self._scrub.finish()

    @property
    def done(self) -> bool:
        return getattr(self._inner, "done", False)

    @property
    def reencoded(self) -> bool | None:
        return getattr(self._inner, "reencoded", None)


def passthrough(protocol: str, sse: bool, redactor: Redactor | None) -> Passthrough:
    return Passthrough(protocol, sse) if redactor is None else KeyedPassthrough(protocol, sse, redactor)


def redacting(pipeline, redactor: Redactor | None):
    return pipeline if redactor is None else Redacting(pipeline, redactor)


def _report(hooks, addons, flow: Flow, data: bytes) -> None:
    for hook in hooks:
        try:
            hook(flow, data)
        except Exception as exc:
            addons.failed(hook, flow, exc)


async def relay(flow: Flow, resp, pipeline, addons) -> AsyncIterator[bytes]:
    """Yield what the agent gets for `resp`'s body; end the flow (`done`) and close `resp` whatever happens.

    Three kinds of pipeline, recorded accordingly: `Passthrough` (the agent gets the
    upstream's pieces: recorded once, as upstream pieces); a pass-through tap running
    stream filters (`reencoded` says whether its output has stopped being the upstream's
    bytes: until then recorded like a pass-through; from then on the agent's stream is
    recorded whole, what it got so far first; past `KEEP_BYTES`, as it goes, so that
    nothing is kept for a long stream); anything else (a translation: the agent's
    stream recorded piece by piece beside the upstream's). A pipeline whose `done` turns
    True (a guard cut the stream) wants no more input: the upstream is closed at once, so
    the provider stops generating.

    Raises the upstream's error when the pipeline cannot end the body well-formed
    (the server then cuts the connection: the only honest signal left).
    """
    on_chunk = addons.chunk_hooks
    on_agent = addons.agent_chunk_hooks
    verbatim = isinstance(pipeline, Passthrough)
    tapped = not verbatim and getattr(pipeline, "reencoded", None) is not None
    sent: list[bytes] | None = [] if tapped else None  # a tap's output while it is the upstream's bytes
    lag = 0  # upstream bytes a tap has taken in but not yet put out (held for its filters)
    kept = 0  # the bytes `sent` refers to
    if not verbatim and not tapped:
        addons.agent_head(flow)
    on_changed = () if verbatim or tapped else on_agent
    try:
        # The identity's feed only remembers the piece: skipped per piece (a call per
        # event is a tenth of the relay's cost), given the last piece if it fails.
        feed = None if type(pipeline) is Passthrough else pipeline.feed
        chunk = b""
        try:
            async for chunk in resp.aiter_raw():
                if on_chunk:
                    _report(on_chunk, addons, flow, chunk)
                out = chunk if feed is None else feed(chunk)
                if sent is not None:
                    lag += len(chunk) - len(out)
                    if out:
                        sent.append(out)
                        kept += len(out)
                    # The tap's output differs from here, or the stream is long: from here the
                    # agent's stream is recorded as it goes, what it got so far first.
                    if pipeline.reencoded or kept > KEEP_BYTES:
                        addons.agent_head(flow)
                        _report(on_agent, addons, flow, b"".join(sent))
                        sent, on_changed = None, on_agent
                elif out and on_changed:
                    _report(on_changed, addons, flow, out)
                if out:
                    yield out
                if not verbatim and pipeline.done:
                    break  # a guard ended the stream: read no more; `finally` closes the upstream
            end = pipeline.finish()
        except UpstreamError as exc:
            addons.error(flow, "upstream_stream", str(exc))
            if feed is None and chunk:
                pipeline.feed(chunk)
            end = pipeline.abort(error_kind(exc), f"agentwrap: upstream stream failed: {exc}")
            if end is None:
                raise
        if sent is not None and pipeline.reencoded:
            addons.agent_head(flow)
            _report(on_agent, addons, flow, b"".join(sent) + (end or b""))
        elif end:
            # agentwrap's own: an error event, a translation's closing (not the upstream bytes held back)
            own = end[pipeline.held:] if verbatim else end[lag:] if sent is not None else end
            if own:
                _report(on_agent, addons, flow, own)
        if end:
            yield end
    finally:
        addons.done(flow)
        await resp.aclose()


def redact_response(response: ProxyResponse, redactor: Redactor) -> ProxyResponse:
    """`response` with every key replaced in its header values and (a whole) body.
    A streamed body is redacted by its relay."""
    headers = response.headers
    values = b"\n".join([v for _, v in headers])
    if redactor.bytes(values) is not values:
        response.headers = [(n, redactor.bytes(v)) for n, v in headers]
    if isinstance(response.body, (bytes, bytearray)):
        response.body = redactor.bytes(bytes(response.body))
    return response
