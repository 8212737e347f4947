"""Gemini generateContent responses (stream, whole, error) to neutral events.

Every `alt=sse` event is a whole GenerateContentResponse; function calls
arrive whole (no argument deltas), possibly without `id` (Gemini API before
Gemini 3, and most compatible servers), so ids are made from the response id
and the call's position, stable for the agent to pair its results with.
`thoughtSignature` may sit on a thought part, a functionCall part or a text
part; it becomes provider_meta where the Gemini encoder puts it back. A
stream must end with a finishReason (or a prompt block); Gemini CLI itself
retries streams without one. Gemini CLI with a Google login talks to Code
Assist, whose chunks wrap the same object as `{"response": {...}, "traceId":
...}`: it is unwrapped (and a resumed encoder wraps what it adds). Sans-IO.
"""

from __future__ import annotations

import json
from typing import Any

from agentwrap.errors import UpstreamProtocol
from agentwrap.protocols._blocks import dumps
from agentwrap.protocols._lenient import as_dict, as_int, as_list, as_text, load, load_body, require_shape, safe_id, tool_name, truncated
from agentwrap.protocols.neutral.events import (
    MessageStart,
    NeutralEvent,
    Stop,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    status_type,
)
from agentwrap.protocols.resume import StreamState
from agentwrap.protocols.sse import SseEvent

__all__ = ["StreamDecoder", "decode_response", "decode_error", "decode_usage", "USAGE_KEYS"]

_STATUSES = {
    "INVALID_ARGUMENT": "invalid_request",
    "FAILED_PRECONDITION": "invalid_request",
    "OUT_OF_RANGE": "invalid_request",
    "UNAUTHENTICATED": "authentication",
    "PERMISSION_DENIED": "permission",
    "NOT_FOUND": "not_found",
    "RESOURCE_EXHAUSTED": "rate_limit",
    "UNAVAILABLE": "overloaded",
    "DEADLINE_EXCEEDED": "timeout",
    "INTERNAL": "api_error",
}
_REFUSALS = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"}
# The model produced a call it could not finish; Gemini CLI retries these.
_BROKEN_CALLS = {"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"}


def decode_usage(raw: Any) -> Usage:
    """Neutral token counts of a `usageMetadata` object (the usage so far, on every chunk)."""
    get = as_dict(raw).get
    # Thought tokens are billed as output; tool-use prompt tokens as input.
    return Usage(as_int(get("promptTokenCount")) + as_int(get("toolUsePromptTokenCount")),
                 as_int(get("candidatesTokenCount")) + as_int(get("thoughtsTokenCount")), as_int(get("cachedContentTokenCount")))


# The JSON keys each Usage field is read from (input, output, cache read, cache write).
USAGE_KEYS = ((b'"promptTokenCount"', b'"toolUsePromptTokenCount"'), (b'"candidatesTokenCount"', b'"thoughtsTokenCount"'),
              (b'"cachedContentTokenCount"',), ())


def _unwrap(chunk: Any) -> Any:
    """A Code Assist chunk's GenerateContentResponse (`{"response": {...}, "traceId": ...}`), else the chunk."""
    if type(chunk) is dict and type(chunk.get("response")) is dict and "candidates" not in chunk and "error" not in chunk:
        return chunk["response"]
    return chunk


def _error(error: Any) -> StreamError:
    error = as_dict(error)
    code = error.get("code") if isinstance(error.get("code"), int) else 500
    kind = _STATUSES.get(as_text(error.get("status"))) or status_type(code)
    return StreamError(kind, as_text(error.get("message")) or "upstream error", code)


class StreamDecoder:
    """Gemini `alt=sse` events to neutral events; see the module docstring."""

    # The text lane (lane.py): a text chunk carries the usage so far, decoded by lane_usage.
    lane_volatile = ("responseId",)
    lane_usage_key = "usageMetadata"
    lane_usage = staticmethod(decode_usage)
    lane_usage_keys = USAGE_KEYS

    @staticmethod
    def lane_locate(data: Any) -> tuple[dict, str] | None:
        """Where a chunk this decoder turns into exactly TextDelta (+ Usage) keeps its text; else None."""
        data = _unwrap(data)
        if type(data) is not dict or "error" in data or as_dict(data.get("promptFeedback")).get("blockReason"):
            return None
        candidates = data.get("candidates")
        if type(candidates) is not list or len(candidates) != 1 or type(candidates[0]) is not dict:
            return None
        candidate = candidates[0]
        if candidate.get("finishReason") not in (None, "", "FINISH_REASON_UNSPECIFIED"):
            return None
        parts = as_dict(candidate.get("content")).get("parts")
        if type(parts) is not list or len(parts) != 1 or type(parts[0]) is not dict:
            return None
        part = parts[0]
        if type(part.get("text")) is not str or part.get("thought") is True or part.get("thoughtSignature") or "functionCall" in part:
            return None
        if "usageMetadata" in data and type(data["usageMetadata"]) is not dict:
            return None
        return part, "text"

    def lane_ready(self) -> bool:
        return self._started and not self._done

    def __init__(self, id_hint: str = "", *, observe: bool = False) -> None:
        self._hint = safe_id(id_hint)
        self._tools = 0
        self._started = False
        self._finished = False
        self._done = False
        self._state = StreamState()
        self._usage_raw: bytes | None = None  # the usage object of the last text chunk the lane forwarded
        self.data: Any = None  # the JSON of the event fed last (None: not parsed)
        if observe:  # every event fed counts as sent (else the caller says which did: `observe`)
            self.feed = self._feed_observed  # type: ignore[method-assign]

    def _feed_observed(self, event: SseEvent) -> list[NeutralEvent]:
        out = StreamDecoder.feed(self, event)
        self.observe(self.data)
        return out

    def feed(self, event: SseEvent) -> list[NeutralEvent]:
        if self._done:
            self.data = None
            return []
        self.data = data = load(event)
        # Without alt=sse Gemini streams one JSON array; accept its elements too.
        chunks = data if isinstance(data, list) else [data]
        out: list[NeutralEvent] = []
        for chunk in chunks:
            if not isinstance(chunk, dict):
                raise UpstreamProtocol(f"Gemini stream chunk is not an object: {event.data[:120]!r}")
            inner = _unwrap(chunk)
            if inner is not chunk:  # Code Assist: a fact of the stream, known before anything went out
                self._state.wrap, chunk = "response", inner
            out += self._chunk(chunk)
            if self._done:
                break
        return out

    def _chunk(self, data: dict) -> list[NeutralEvent]:
        if "error" in data:
            self._done = True
            return [_error(data["error"])]
        out: list[NeutralEvent] = []
        if not self._started:
            self._started = True
            response_id = as_text(data.get("responseId"))
            self._hint = safe_id(response_id) or self._hint
            out.append(MessageStart(response_id, as_text(data.get("modelVersion"))))
        candidate = as_dict(next(iter(as_list(data.get("candidates"))), None))
        for part in as_list(as_dict(candidate.get("content")).get("parts")):
            out += self._part(as_dict(part))
        if isinstance(data.get("usageMetadata"), dict):
            out.append(decode_usage(data["usageMetadata"]))
        reason = candidate.get("finishReason")
        block = as_dict(data.get("promptFeedback")).get("blockReason")
        if isinstance(reason, str) and reason and reason != "FINISH_REASON_UNSPECIFIED":
            self._done = True
            if reason in _BROKEN_CALLS:
                message = as_text(candidate.get("finishMessage")) or f"the model ended with {reason}"
                return out + [StreamError("api_error", f"Gemini: {message}", 502)]
            if reason == "MAX_TOKENS":
                stop = "max_tokens"
            elif reason in _REFUSALS:
                stop = "refusal"
            else:
                stop = "tool_use" if self._tools else "end_turn"
            out.append(Stop(stop))
        elif isinstance(block, str) and block:
            self._done = True  # the prompt itself was blocked: no candidates follow
            out.append(Stop("refusal"))
        return out

    def _part(self, part: dict) -> list[NeutralEvent]:
        signature = part.get("thoughtSignature")
        meta = {"thought_signature": signature} if isinstance(signature, str) and signature else None
        call = part.get("functionCall")
        if isinstance(call, dict):
            n = self._tools
            self._tools += 1
            name = tool_name(call.get("name"))
            call_id = as_text(call.get("id")) or f"call_{self._hint or 'gm'}_{n}"
            args = call.get("args") if isinstance(call.get("args"), dict) else {}
            return [ToolCallStart(n, call_id, name, provider_meta=meta), ToolCallArgsDelta(n, dumps(args)), ToolCallEnd(n)]
        text = as_text(part.get("text"))
        if part.get("thought") is True:
            out: list[NeutralEvent] = [ThinkingDelta(text)] if text else []
            return out + ([ThinkingDelta("", meta)] if meta else [])
        # The signature belongs to this part: "next" says so to other protocols.
        out = [ThinkingDelta("", {**meta, "next": True})] if meta else []
        return out + ([TextDelta(text)] if text else [])

    # -- what the agent has received (resume.py) -------------------------------------

    def observe(self, data: Any) -> None:
        """The event whose JSON is `data` (as parsed by `feed`) went to the agent."""
        for chunk in data if type(data) is list else (data,):
            if type(chunk) is not dict:
                continue
            state = self._state
            chunk = _unwrap(chunk)
            if "error" in chunk:
                state.ended = True
                return
            if not state.started:
                state.started = True
                state.response_id, state.model = as_text(chunk.get("responseId")), as_text(chunk.get("modelVersion"))
            if isinstance(chunk.get("usageMetadata"), dict):
                state.usage = decode_usage(chunk["usageMetadata"])  # the usage so far, not a part of it
                self._usage_raw = None
            candidate = as_dict(next(iter(as_list(chunk.get("candidates"))), None))
            for part in as_list(as_dict(candidate.get("content")).get("parts")):
                if isinstance(part, dict) and isinstance(part.get("functionCall"), dict):
                    state.tools[len(state.tools)] = -1
            reason = candidate.get("finishReason")
            if (isinstance(reason, str) and reason and reason != "FINISH_REASON_UNSPECIFIED") or as_dict(chunk.get("promptFeedback")).get("blockReason"):
                state.ended = True

    def observe_lane(self, literals: list[bytes], run: bytes, usage: bytes | None = None) -> None:
        """A run of text chunks went to the agent undecoded; `usage` is the last one's usage
        object (decoded only if the state is asked for)."""
        if usage is not None:
            self._usage_raw = usage

    def state(self) -> StreamState:
        """What the agent has received, as observed (a copy)."""
        if self._usage_raw is not None:
            self._state.usage = decode_usage(json.loads(self._usage_raw))
            self._usage_raw = None
        return self._state.copy()

    def finish(self) -> list[NeutralEvent]:
        """End of stream: an error unless a finishReason came."""
        if self._done:
            return []
        self._done = True
        return [truncated("a finishReason")]


def decode_response(body: Any) -> list[NeutralEvent]:
    """Neutral events of a non-streaming GenerateContentResponse (or error) body."""
    if isinstance(body, list):
        body = body[0] if body else {}
    decoder = StreamDecoder()
    events = decoder._chunk(require_shape(body, "candidates", "error", "promptFeedback"))
    if not decoder._done:
        events.append(Stop("tool_use" if decoder._tools else "end_turn"))
    return events


def decode_error(status: int, body: bytes) -> tuple[str, str]:
    """(neutral error type, message) of a Google API error response."""
    data = load_body(body)
    if isinstance(data, list) and data:
        data = data[0]  # streaming endpoints wrap errors in an array
    error = as_dict(as_dict(data).get("error"))
    kind = _STATUSES.get(as_text(error.get("status"))) or status_type(status)
    message = as_text(error.get("message")) or (body[:300].decode("utf-8", "replace") if body else f"HTTP {status}")
    return kind, message
