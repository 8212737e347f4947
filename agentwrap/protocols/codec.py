"""What a codec offers, the codec of a protocol id, and errors in the agent's own protocol.

A codec is a module (`protocols/anthropic/`, `openai_chat/`, `openai_responses/`,
`gemini/`) whose package `__init__` offers the names `Codec` lists; `codec()`
returns it. `Codec`, `LaneDecoder` and `LaneEncoder` are for type checkers and
the conformance test (tests/protocols/test_protocols_codec_conformance.py), never for
`isinstance` on the stream path (a runtime protocol check costs microseconds).

Agents' retry logic matches on error shapes, so agentwrap's own failures
(missing secret, bad JSON, unreachable upstream) are rendered exactly as the
agent's provider would render them (`encode_error`, `stream_error`).

Sans-IO. Importing this module imports no codec: each is imported on first use.
"""

from __future__ import annotations

import json
from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Iterable

    from agentwrap.protocols.neutral.events import NeutralEvent, Usage
    from agentwrap.protocols.neutral.request import NeutralRequest
    from agentwrap.protocols.neutral.summary import RequestSummary
    from agentwrap.protocols.resume import StreamState
    from agentwrap.protocols.sse import SseEvent

__all__ = [
    "Codec",
    "Decoder",
    "Encoder",
    "LaneDecoder",
    "LaneEncoder",
    "MODULES",
    "codec",
    "encode_error",
    "stream_error",
]

MODULES = {
    "anthropic_messages": "agentwrap.protocols.anthropic",
    "openai_chat": "agentwrap.protocols.openai_chat",
    "openai_responses": "agentwrap.protocols.openai_responses",
    "gemini": "agentwrap.protocols.gemini",
}


class Decoder(Protocol):
    """A backend's SSE events in, neutral events out (one stage of a translated stream).

    Raises `UpstreamProtocol` for data that is not the protocol's; `finish()`
    reports a stream that ended before its terminal event as a `StreamError`.

    It also keeps what the agent has received of a stream it passes through
    (resume.py): `data` is the JSON of the event fed last; `observe(data)` says
    that event went to the agent (made with `observe=True`, every event fed
    does), `observe_lane(literals, run, usage)` that a run of text events did
    without being decoded; `state()` is the `StreamState` an encoder resumes.
    """

    data: Any

    def feed(self, event: SseEvent) -> list[NeutralEvent]: ...

    def finish(self) -> list[NeutralEvent]: ...

    def observe(self, data: Any) -> None: ...

    def observe_lane(self, literals: list[bytes], run: bytes, usage: bytes | None = None) -> None: ...

    def state(self) -> StreamState: ...


@runtime_checkable
class LaneDecoder(Decoder, Protocol):
    """What the text lane (lane.py) needs of a decoder to learn and prove a template.

    `lane_locate(data)` says where an event that decodes to exactly one
    `TextDelta` keeps its text, `lane_volatile` which keys change from event
    to event without meaning anything mid-stream, `lane_ready()` whether the
    decoder's state now makes such an event a plain `TextDelta`. A protocol
    whose text events carry the usage so far (Gemini) names its key in
    `lane_usage_key`; `lane_usage` decodes such an object and
    `lane_usage_keys` lists the JSON keys of each `Usage` field.
    """

    lane_volatile: tuple[str, ...]
    lane_usage_key: str | None
    lane_usage_keys: tuple[tuple[bytes, ...], ...]

    @staticmethod
    def lane_locate(data: Any) -> tuple[dict, str] | None: ...

    @staticmethod
    def lane_usage(raw: Any) -> Usage: ...

    def lane_ready(self) -> bool: ...


class Encoder(Protocol):
    """Neutral events in, the agent protocol's SSE bytes out. The class's
    `resume(state, *, include_usage=True)` is the encoder of the rest of a
    stream already under way (resume.py)."""

    content_type: str

    def feed(self, event: NeutralEvent) -> bytes: ...

    def finish(self) -> bytes: ...


@runtime_checkable
class LaneEncoder(Encoder, Protocol):
    """What the text lane needs of an encoder: `text_run(literals, joined)` is the bytes
    of one `TextDelta` per JSON string literal, or None when the open block does not
    take text (the general path must)."""

    def text_run(self, literals: list[bytes], joined: bytes) -> bytes | None: ...


class _DecoderFactory(Protocol):
    def __call__(self, id_hint: str = "", *, observe: bool = False) -> LaneDecoder: ...


class _EncoderFactory(Protocol):
    def __call__(self, model: str, response_id: str, *, created: int = 0, include_usage: bool = True) -> LaneEncoder: ...

    def resume(self, state: StreamState, *, include_usage: bool = True) -> LaneEncoder: ...


@runtime_checkable
class Codec(Protocol):
    """The names a codec module offers (the four `protocols/<protocol>/__init__.py`).

    - `PROTOCOL`: its protocol id;
    - requests: `decode_request(body, path)` -> `NeutralRequest` (raises
      `RequestError`), `encode_request(req, model)` -> (path, body),
      `summarize_request(body, path)` -> `RequestSummary`;
    - responses from a backend: `StreamDecoder(id_hint, *, observe)`, `decode_response(body)`,
      `decode_error(status, body)` -> (neutral error type, message),
      `decode_usage(raw)` -> `Usage` of the protocol's usage object, whose JSON
      keys for each `Usage` field `USAGE_KEYS` lists;
    - responses to an agent: `StreamEncoder(model, response_id, *, created,
      include_usage)` (keywords a protocol has no use for are ignored) and
      `StreamEncoder.resume(state)`,
      `encode_response(events, model, response_id, *, created)` -> JSON object,
      `encode_error(error_type, message, status)` -> (status, body).
    """

    PROTOCOL: str
    USAGE_KEYS: tuple[tuple[bytes, ...], ...]
    StreamDecoder: _DecoderFactory
    StreamEncoder: _EncoderFactory

    def decode_request(self, body: Any, path: str = "") -> NeutralRequest: ...

    def encode_request(self, req: NeutralRequest, model: str) -> tuple[str, dict]: ...

    def summarize_request(self, body: Any, path: str = "") -> RequestSummary: ...

    def decode_response(self, body: Any) -> list[NeutralEvent]: ...

    def decode_error(self, status: int, body: bytes) -> tuple[str, str]: ...

    def decode_usage(self, raw: Any) -> Usage: ...

    def encode_response(self, events: Iterable[NeutralEvent], model: str, response_id: str, *, created: int = 0) -> dict: ...

    def encode_error(self, error_type: str, message: str, status: int | None = None) -> tuple[int, bytes]: ...


def codec(protocol: str) -> Codec:
    """The codec module of a protocol id (imported on first use)."""
    return import_module(MODULES[protocol])  # type: ignore[return-value]


def encode_error(protocol: str, error_type: str, message: str, status: int | None = None) -> tuple[int, bytes]:
    """(HTTP status, body) of an error response in `protocol`'s shape."""
    return codec(protocol).encode_error(error_type, message, status)


def stream_error(protocol: str, error_type: str, message: str) -> bytes:
    """One SSE event that reports an error mid-stream, valid after any complete event."""
    _, body = encode_error(protocol, error_type, message)
    if protocol == "anthropic_messages":
        return b"event: error\ndata: " + body + b"\n\n"
    if protocol == "openai_responses":
        err = json.loads(body).get("error", {})
        failed = {
            "type": "response.failed",
            "response": {
                "object": "response",
                "status": "failed",
                "error": {"code": err.get("code") or "server_error", "message": err.get("message", message)},
                "output": [],
            },
        }
        return b"event: response.failed\ndata: " + json.dumps(failed).encode() + b"\n\n"
    return b"data: " + body + b"\n\n"
