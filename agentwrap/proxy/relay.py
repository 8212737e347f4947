"""The one relay: an upstream body to the agent, piece by piece, through a pipeline.

A pipeline has three verbs: `feed(bytes) -> bytes` per upstream piece,
`finish() -> bytes` at the end of the upstream body, and `abort(kind,
message) -> bytes | None` when the upstream fails mid-body (the tail that ends
the agent's stream properly, or None: nothing can, cut the connection).
`Passthrough` is the identity (the upstream's own bytes, unchanged, copied
never); `protocols.translate.StreamTranslator` re-encodes a backend's stream
in the agent's protocol. Both end the same way on failure: the relay reports
the error, asks the pipeline for its tail, sends it, and ends the flow.

Keys: when agentwrap holds provider keys, everything relayed to the agent
passes a `StreamRedactor` that replaces each key (an upstream may echo the
key it received, in an error message or a header) with a marker of the same
length, so a Content-Length stays true. A piece's tail that could begin a
key waits for the next piece; nothing else is delayed. Without keys the
relay does no work for them.

Per piece, the relay calls the addons' `chunk` hooks with what the upstream
sent and, when the pipeline changed it, their `agent_chunk` hooks with what
the agent gets. No socket here: the server iterates the relay.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from agentwrap.capture.redact import Redactor, StreamRedactor
from agentwrap.errors import UpstreamError, UpstreamTimeout
from agentwrap.protocols import wire
from agentwrap.proxy.flow import Flow, ProxyResponse

__all__ = ["Passthrough", "relay", "redact_response", "error_kind"]


def error_kind(exc: UpstreamError) -> str:
    """The agent protocol's error type for an upstream failure."""
    return "timeout" if isinstance(exc, UpstreamTimeout) else "api_error"


class Passthrough:
    """The upstream's bytes, unchanged. `sse`: the body is an SSE stream without a
    Content-Length, which a failure can close with the protocol's own error event."""

    __slots__ = ("protocol", "sse", "_last")

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


def _pipeline(pipeline, filters: list) -> object:
    if filters:
        # Stream filters (guards) plug in here: a StreamTranslator takes them after its
        # adapter; a pass-through stream needs the tap of protocols/tap.py. Neither exists yet.
        raise NotImplementedError(f"stream filters are not supported yet ({len(filters)} handed out)")
    return pipeline


async def relay(flow: Flow, resp, pipeline, addons, redactor: Redactor | None) -> AsyncIterator[bytes]:
    """Yield what the agent gets for `resp`'s body; end the flow (`done`) and close `resp` whatever happens.

    Raises the upstream's error when the pipeline cannot end the body well-formed
    (the server then cuts the connection: the only honest signal left).
    """
    scrub = StreamRedactor(redactor) if redactor is not None else None
    verbatim = isinstance(pipeline, Passthrough)
    on_chunk = addons.chunk_hooks
    on_agent = addons.agent_chunk_hooks
    on_changed = () if verbatim else on_agent
    try:
        pipeline = _pipeline(pipeline, addons.stream(flow))
        feed = pipeline.feed
        try:
            async for chunk in resp.aiter_raw():
                for hook in on_chunk:
                    try:
                        hook(flow, chunk)
                    except Exception as exc:
                        addons.failed(hook, flow, exc)
                out = feed(chunk)
                if out:
                    for hook in on_changed:
                        try:
                            hook(flow, out)
                        except Exception as exc:
                            addons.failed(hook, flow, exc)
                    if scrub is not None:
                        out = scrub.feed(out)
                    yield out
            end = pipeline.finish()
        except UpstreamError as exc:
            addons.error(flow, "upstream_stream", str(exc))
            end = pipeline.abort(error_kind(exc), f"agentwrap: upstream stream failed: {exc}")
            if end is None:
                raise
        if end:  # agentwrap's own bytes (an error event, the translation's closing events)
            for hook in on_agent:
                try:
                    hook(flow, end)
                except Exception as exc:
                    addons.failed(hook, flow, exc)
        out = end if scrub is None else scrub.feed(end) + scrub.finish()
        if out:
            yield out
    finally:
        addons.done(flow)
        await resp.aclose()


def redact_response(response: ProxyResponse, redactor: Redactor) -> ProxyResponse:
    """`response` with every key replaced in its header values and (a whole) body.
    A streamed body is redacted by its relay."""
    headers = response.headers
    values = b"\n".join(v for _, v in headers)
    if redactor.bytes(values) is not values:
        response.headers = [(n, redactor.bytes(v)) for n, v in headers]
    if isinstance(response.body, (bytes, bytearray)):
        response.body = redactor.bytes(bytes(response.body))
    return response
