"""The replay backend: serve a recorded run's responses back, offline and in order.

Theory of operation: each recorded exchange is keyed by (method, path, a
normalised request body). Agents put volatile data in every request — session
ids, dates in the system prompt, process ids and wall times in tool results,
random item ids, agentwrap's own per-run temporary directory — so the key
masks every run of digits and agentwrap's temporary directory names in every string and
drops fields that only identify a run (`metadata`, `user_id`, item `id`s,
`prompt_cache_key`, ...). Recordings with the same key are served first in,
first out, each once. A request with no recording left gets a protocol-shaped
error and a divergence entry that says which request it was and how it
differs from the next unconsumed recording of the same endpoint.

As a proxy backend (`send`, the `backends.base.Backend` seam) it answers
with the recorded status, headers and body pieces, which then take the same
relay and capture path as an http backend's; a divergence is answered with
a 400 in the request's protocol and reported as the response's `error`.

Pure: plain data in, plain data out.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from agentwrap.backends.base import MemoryResponse

__all__ = ["RecordedExchange", "ReplayBackend", "ReplayReply", "Divergence", "request_key"]

_DIGITS = re.compile(r"\d+")
# agentwrap's own per-run temporary directory (the Gemini CLI shadow home shows up in its prompts).
_RUN_TMP = re.compile(r"agentwrap-[A-Za-z0-9_]{6,}")
# Fields that identify a run, a session or an item rather than carry the conversation.
VOLATILE_KEYS = frozenset(
    {"metadata", "user_id", "id", "prompt_cache_key", "session_id", "client_metadata", "previous_response_id"}
)


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


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in sorted(value.items()) if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, str):
        return _DIGITS.sub("#", _RUN_TMP.sub("agentwrap-*", value))
    return value


def _normalised_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return _normalise(json.loads(body))
    except (ValueError, UnicodeDecodeError):
        return _DIGITS.sub("#", body.decode("utf-8", "replace"))


def request_key(method: str, path: str, body: bytes) -> str:
    """The stable matching key of a request."""
    return json.dumps([method.upper(), _DIGITS.sub("#", path), _normalised_body(body)], sort_keys=True, separators=(",", ":"))


def first_difference(a: Any, b: Any, where: str = "body") -> str:
    """A short description of the first place where two normalised JSON values differ."""
    if type(a) is not type(b):
        return f"{where}: {type(b).__name__} recorded, {type(a).__name__} now"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in b:
                return f"{where}.{k}: not in the recording"
            if k not in a:
                return f"{where}.{k}: missing now"
            if a[k] != b[k]:
                return first_difference(a[k], b[k], f"{where}.{k}")
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return first_difference(x, y, f"{where}[{i}]")
        if len(a) != len(b):
            return f"{where}: {len(b)} items recorded, {len(a)} now"
    if a != b:
        shown_a, shown_b = json.dumps(a)[:80], json.dumps(b)[:80]
        return f"{where}: recorded {shown_b}, now {shown_a}"
    return f"{where}: differs"


@dataclass
class ReplayBackend:
    exchanges: list[RecordedExchange]
    divergences: list[Divergence] = field(default_factory=list)
    served: int = 0
    _queues: dict[str, deque[RecordedExchange]] = field(default_factory=dict)
    _requests: int = 0

    def __post_init__(self) -> None:
        for ex in self.exchanges:
            self._queues.setdefault(request_key(ex.method, ex.path, ex.body), deque()).append(ex)

    def respond(self, method: str, path: str, body: bytes) -> ReplayReply | None:
        """The recorded answer to this request, or None (and a divergence) if there is none."""
        self._requests += 1
        queue = self._queues.get(request_key(method, path, body))
        if queue:
            ex = queue.popleft()
            self.served += 1
            return ReplayReply(ex.status, ex.headers, ex.chunks, ex.index)
        self.divergences.append(Divergence(self._requests, method, path, self._explain(method, path, body)))
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
        return sorted((ex for q in self._queues.values() for ex in q), key=lambda e: e.index)

    def _explain(self, method: str, path: str, body: bytes) -> str:
        base = path.split("?", 1)[0]
        candidates = [ex for ex in self.unused() if ex.method == method and ex.path.split("?", 1)[0] == base]
        if not candidates:
            return "no recording of this endpoint is left"
        ex = candidates[0]
        diff = first_difference(_normalised_body(body), _normalised_body(ex.body))
        return f"no matching recording; closest is recorded exchange {ex.index + 1}, which differs at {diff}"
