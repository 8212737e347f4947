"""The one seam between the proxy and whatever answers a request: `Backend.send`.

Like httpx's transport (`handle_async_request`, and `MockTransport` for
tests), every backend takes a complete upstream request and returns a
response whose head is known and whose body streams:

    resp = await backend.send(request)          # UpstreamRequest -> UpstreamResponse
    resp.status, resp.headers                    # the head
    async for piece in resp.aiter_raw(): ...     # or: await resp.aread()
    await resp.aclose()                          # always; releases the connection

`HttpBackend` (backends/http.py) sends over the network; `ScriptedBackend`
and `ReplayBackend` answer from memory with a `MemoryResponse`. All three go
through the same translation, relay, capture and guards in the proxy, so an
offline backend exercises exactly the path a real one does. A backend raises
`UpstreamError` (or `ConfigError` for a bad URL or proxy setting) when it
cannot produce a response head; anything it can answer, errors included, is
a response.

No I/O here: the in-memory pieces only hand over bytes they already hold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol

from agentwrap.protocols._json import dumps_bytes

__all__ = ["Backend", "UpstreamRequest", "UpstreamResponse", "MemoryResponse"]

Headers = list[tuple[bytes, bytes]]


class UpstreamRequest:
    """One request to a backend, complete: what an http backend sends as is.

    `protocol` is the wire protocol the request speaks and `target` its path
    and query relative to the backend (the in-memory backends answer from
    these). `json` is the body as a JSON value when the proxy has it parsed
    (a scripted backend reads it without parsing again); `body` is the bytes,
    serialised from `json` on first use. Setting `json` replaces the body.
    """

    __slots__ = ("method", "url", "headers", "protocol", "target", "_json", "_body")

    def __init__(self, method: str, url: str, headers: Headers, protocol: str, target: str, *,
                 body: bytes | None = None, json: Any = None) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.protocol = protocol
        self.target = target
        self._json = json
        self._body = body

    @property
    def json(self) -> Any:
        return self._json

    @json.setter
    def json(self, value: Any) -> None:
        self._json, self._body = value, None

    @property
    def body(self) -> bytes:
        if self._body is None:
            # Compact and UTF-8 as is: what the agents themselves send (JSON.stringify, serde_json).
            self._body = b"" if self._json is None else dumps_bytes(self._json)
        return self._body


class UpstreamResponse(Protocol):
    """A response head whose body streams. `backends.http.UpstreamResponse` and
    `MemoryResponse` have this shape. Reading the body may raise `UpstreamError`."""

    status: int
    headers: Headers

    def aiter_raw(self) -> AsyncIterator[bytes]: ...

    async def aread(self) -> bytes: ...

    async def aclose(self) -> None: ...


class Backend(Protocol):
    """Where the proxy sends a request it does not answer itself."""

    def url(self, protocol: str, target: str) -> str:
        """The URL a request of `protocol` for `target` (path and query) goes to; capture records it."""
        ...

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """The response to `request`, once its head is there. Raises UpstreamError, ConfigError."""
        ...


class MemoryResponse:
    """A response held in memory, body in `chunks` (each one piece of `aiter_raw`).

    A `whole` body gets a Content-Length (the agent receives it as one
    message, as from a server); a streamed one does not. `error` is a
    (kind, message) pair the backend wants recorded besides the response (a
    replay divergence). `final`: the answer as an agent once got it (a
    replay), which agentwrap must not retry or fail over whatever its status.
    """

    __slots__ = ("status", "headers", "error", "final", "_chunks")

    def __init__(self, status: int, headers: Headers, chunks: Iterable[bytes], *, whole: bool = True,
                 error: tuple[str, str] | None = None, final: bool = False) -> None:
        self._chunks = [c for c in chunks if c]
        self.status = status
        self.headers = headers
        if whole:
            self.headers = [*headers, (b"content-length", b"%d" % sum(len(c) for c in self._chunks))]
        self.error = error
        self.final = final

    def __repr__(self) -> str:
        return f"<MemoryResponse {self.status}>"

    def aiter_raw(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk

    async def aread(self) -> bytes:
        return b"".join(self._chunks)

    async def aclose(self) -> None:
        self._chunks = []
