"""The replay backend: serve a recorded run's responses back, offline and in order.

Each request is matched to a recorded one by `replay_match` (its module
docstring has the rule: a key with volatile values normalised, then the
run-varying values learned from the recording); a recording is served once,
matching recordings first in, first out. A request with no recording left
gets a protocol-shaped error and a divergence entry that says which request
it was and how it differs from the next unconsumed recording of the same
endpoint.

As a proxy backend (`send`, the `backends.base.Backend` seam) it answers
with the recorded status, headers and body pieces of what the agent got,
which then take the same relay and capture path as an http backend's; a
divergence is answered with a 400 in the request's protocol and reported as
the response's `error`.

Pure: plain data in, plain data out.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from agentwrap.backends.base import MemoryResponse
from agentwrap.backends.replay_match import (
    VOLATILE_KEYS, Learned, Mismatch, compare, first_difference, key_of, normalise, request_key,
)

__all__ = ["RecordedExchange", "ReplayBackend", "ReplayReply", "Divergence", "request_key", "VOLATILE_KEYS"]


@dataclass(frozen=True, slots=True)
class RecordedExchange:
    index: int
    method: str
    path: str  # without the session secret prefix, with the query
    body: bytes
    status: int
    headers: list[tuple[bytes, bytes]]
    chunks: list[bytes]


@dataclass(frozen=True, slots=True)
class ReplayReply:
    status: int
    headers: list[tuple[bytes, bytes]]
    chunks: list[bytes]
    recorded_index: int


@dataclass(frozen=True, slots=True)
class Divergence:
    request_number: int  # 1-based, in the replayed run
    method: str
    path: str
    detail: str

    def __str__(self) -> str:
        return f"request {self.request_number} ({self.method} {self.path}): {self.detail}"


# Framing of the recorded response: the replayed body is framed anew.
_NOT_REPLAYED = frozenset({b"content-length", b"transfer-encoding", b"connection", b"keep-alive"})


def _latin1(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("latin-1")


@dataclass
class ReplayBackend:
    """Serves `exchanges` (in recorded order) to the requests of a replayed run."""

    exchanges: list[RecordedExchange]
    divergences: list[Divergence] = field(default_factory=list)
    served: int = 0
    learned: Learned = field(default_factory=Learned)  # the run-varying ids matched so far
    _queues: dict[str, deque[RecordedExchange]] = field(default_factory=dict)  # key -> recordings, oldest first
    _bodies: dict[int, Any] = field(default_factory=dict)  # recorded index -> normalised body
    _endpoints: dict[int, str] = field(default_factory=dict)  # recorded index -> method and path, digits masked
    _left: dict[int, RecordedExchange] = field(default_factory=dict)  # not served yet, in recorded order
    _requests: int = 0

    def __post_init__(self) -> None:
        for ex in self.exchanges:
            body = self._bodies[ex.index] = normalise(ex.body)
            self._endpoints[ex.index] = key_of(ex.method, ex.path, None)
            self._queues.setdefault(key_of(ex.method, ex.path, body), deque()).append(ex)
            self._left[ex.index] = ex

    def respond(self, method: str, path: str, body: bytes) -> ReplayReply | None:
        """The recorded answer to this request, or None (and a divergence) if there is none:
        the oldest recording left with an equal key, else the oldest that matches by learning."""
        self._requests += 1
        now = self.learned.apply(normalise(body))
        ex = self._by_key(key_of(method, path, now)) or self._by_learning(key_of(method, path, None), now)
        if ex is None:
            self.divergences.append(Divergence(self._requests, method, path, self._explain(method, path, now)))
            return None
        del self._left[ex.index]
        self.served += 1
        return ReplayReply(ex.status, ex.headers, ex.chunks, ex.index)

    def _by_key(self, key: str) -> RecordedExchange | None:
        queue = self._queues.get(key)
        while queue:
            ex = queue.popleft()
            if ex.index in self._left:  # not served already by learning
                return ex
        return None

    def _by_learning(self, endpoint: str, now: Any) -> RecordedExchange | None:
        for ex in self._left.values():
            if self._endpoints[ex.index] != endpoint:
                continue
            try:
                pairs = compare(now, self._bodies[ex.index])
            except Mismatch:
                continue
            self.learned.learn(pairs)
            return ex
        return None

    def url(self, protocol: str, target: str) -> str:
        return "replay:" + target

    async def send(self, request) -> MemoryResponse:
        """Serve the recording of a `backends.base.UpstreamRequest` (matched on method, target and body)."""
        reply = self.respond(request.method, request.target, request.body)
        if reply is None:
            from agentwrap.protocols.codec import encode_error

            divergence = str(self.divergences[-1])
            status, body = encode_error(request.protocol, "invalid_request", f"agentwrap replay: {divergence}")
            return MemoryResponse(status, [(b"content-type", b"application/json")], [body], final=True,
                                  error=("replay_divergence", divergence))
        headers = [(_latin1(n), _latin1(v)) for n, v in reply.headers if _latin1(n).lower() not in _NOT_REPLAYED]
        from agentwrap.protocols.sse import is_sse

        sse = is_sse(headers)
        # What the agent got, retries already decided in the recorded run: final.
        return MemoryResponse(reply.status, headers, reply.chunks, whole=not sse, final=True)

    def unused(self) -> list[RecordedExchange]:
        return list(self._left.values())

    def _explain(self, method: str, path: str, now: Any) -> str:
        base = path.split("?", 1)[0]
        candidates = [ex for ex in self._left.values()
                      if ex.method.upper() == method.upper() and ex.path.split("?", 1)[0] == base]
        if not candidates:
            return "no recording of this endpoint is left"
        ex = candidates[0]
        diff = first_difference(now, self._bodies[ex.index])
        return f"no matching recording; closest is recorded exchange {ex.index + 1}, which differs at {diff}"
