"""Anthropic Messages responses (stream, whole, error) to neutral events.

Stream grammar: docs.anthropic.com "Streaming Messages". `ping` events and
unknown event types are skipped (Anthropic may add types). An `error` event
can arrive at any point, even after content (overloaded mid-stream). Some
Anthropic-compatible servers send a tool_use block's whole `input` in
content_block_start and no input_json_delta; that input is used then.
Sans-IO.
"""

from __future__ import annotations

from typing import Any

from agentwrap.errors import UpstreamProtocol
from agentwrap.protocols._blocks import dumps
from agentwrap.protocols._lenient import as_dict, as_list, as_text, load, load_body, require_shape, tool_name, truncated, usage
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
    error_status,
    merge_usage,
    status_type,
)
from agentwrap.protocols.resume import OpenBlock, StreamState
from agentwrap.protocols.sse import SseEvent

__all__ = ["StreamDecoder", "decode_response", "decode_error", "decode_usage", "USAGE_KEYS"]

_ERRORS = {
    "invalid_request_error": "invalid_request",
    "request_too_large": "invalid_request",
    "authentication_error": "authentication",
    "permission_error": "permission",
    "billing_error": "permission",
    "not_found_error": "not_found",
    "rate_limit_error": "rate_limit",
    "overloaded_error": "overloaded",
    "timeout_error": "timeout",
    "api_error": "api_error",
}
# pause_turn (a server tool paused) and refusal-like stops have no neutral twin
# beyond these; model_context_window_exceeded means the output was cut.
_STOPS = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "refusal": "refusal",
    "model_context_window_exceeded": "max_tokens",
}


def decode_usage(raw: Any) -> Usage:
    """Neutral token counts of an Anthropic `usage` object (a message's, or message_delta's).

    Anthropic counts cached tokens apart; neutral input includes them. A usage
    object without `input_tokens` (message_delta may omit it) says nothing of
    the input, so its input count stays 0 ("unknown here").
    """
    raw = as_dict(raw)
    read, write = raw.get("cache_read_input_tokens"), raw.get("cache_creation_input_tokens")
    base = usage(raw.get("input_tokens"), raw.get("output_tokens"), read, write)
    total = base.input_tokens + base.cache_read_tokens + base.cache_write_tokens if "input_tokens" in raw else 0
    return Usage(total, base.output_tokens, base.cache_read_tokens, base.cache_write_tokens)


# The JSON keys each Usage field is read from (input, output, cache read, cache write).
USAGE_KEYS = (
    (b'"input_tokens"', b'"cache_read_input_tokens"', b'"cache_creation_input_tokens"'),
    (b'"output_tokens"',),
    (b'"cache_read_input_tokens"',),
    (b'"cache_creation_input_tokens"',),
)


def _error(error: Any) -> StreamError:
    error = as_dict(error)
    kind = _ERRORS.get(as_text(error.get("type")), "api_error")
    # Anthropic reports "overloaded" as 529.
    return StreamError(kind, as_text(error.get("message")) or "upstream error", error_status(kind, None, overloaded=529))


class StreamDecoder:
    """Anthropic SSE events to neutral events; see the module docstring."""

    lane_volatile = ()  # the text lane (lane.py): a text delta has no value that changes
    lane_usage_key: str | None = None  # usage never rides on a text delta
    lane_usage = staticmethod(decode_usage)
    lane_usage_keys = USAGE_KEYS

    @staticmethod
    def lane_locate(data: Any) -> tuple[dict, str] | None:
        """Where a text_delta event keeps its text; else None. (The template keeps the block index,
        and a block once of kind text stays so: the decoder turns it into TextDelta.)"""
        if type(data) is not dict or data.get("type") != "content_block_delta" or type(data.get("index")) is not int:
            return None
        delta = data.get("delta")
        if type(delta) is not dict or delta.get("type") != "text_delta" or type(delta.get("text")) is not str:
            return None
        return delta, "text"

    def lane_ready(self) -> bool:
        return not self._done

    def __init__(self, id_hint: str = "", *, observe: bool = False) -> None:
        self._kinds: dict[int, str] = {}  # wire block index -> text | thinking | tool | other
        self._tools: dict[int, int] = {}  # wire block index -> neutral tool index
        self._start_input: dict[int, Any] = {}
        self._has_delta: set[int] = set()
        self._started = False
        self._stopped = False
        self._done = False
        self._state = StreamState()
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
        if not isinstance(data, dict):
            raise UpstreamProtocol(f"Anthropic stream event is not an object: {event.data[:120]!r}")
        kind = data.get("type", event.event)
        if kind == "message_start":
            message = as_dict(data.get("message"))
            self._started = True
            return [MessageStart(as_text(message.get("id")), as_text(message.get("model"))), decode_usage(message.get("usage"))]
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_delta":
            return self._delta(data)
        if kind == "content_block_stop":
            index = data.get("index")
            if not isinstance(index, int) or self._kinds.get(index) != "tool":
                return []
            n = self._tools[index]
            out: list[NeutralEvent] = []
            start_input = self._start_input.pop(index, None)
            if start_input and index not in self._has_delta:
                out.append(ToolCallArgsDelta(n, dumps(start_input)))
            self._kinds[index] = "closed"
            return out + [ToolCallEnd(n)]
        if kind == "message_delta":
            out = []
            reason = as_dict(data.get("delta")).get("stop_reason")
            if isinstance(reason, str):
                self._stopped = True
                out.append(Stop(_STOPS.get(reason, "end_turn")))
            if isinstance(data.get("usage"), dict):
                out.append(decode_usage(data["usage"]))
            return out
        if kind == "message_stop":
            self._done = True
            return []
        if kind == "error":
            self._done = True
            return [_error(data.get("error"))]
        return []  # ping, and event types added later

    def _block_start(self, data: dict) -> list[NeutralEvent]:
        index = data.get("index")
        if not isinstance(index, int) or index in self._kinds:
            raise UpstreamProtocol(f"Anthropic content_block_start with a bad or repeated index {index!r}")
        block = as_dict(data.get("content_block"))
        kind = block.get("type")
        if kind == "text":
            self._kinds[index] = "text"
            return [TextDelta(block["text"])] if as_text(block.get("text")) else []
        if kind == "thinking":
            self._kinds[index] = "thinking"
            return [ThinkingDelta(block["thinking"])] if as_text(block.get("thinking")) else []
        if kind == "redacted_thinking":
            self._kinds[index] = "thinking"
            return [ThinkingDelta("", {"redacted": as_text(block.get("data"))})]
        if kind == "tool_use":
            self._kinds[index] = "tool"
            self._tools[index] = n = len(self._tools)
            if block.get("input"):
                self._start_input[index] = block["input"]
            return [ToolCallStart(n, as_text(block.get("id")) or f"toolu_{n}", tool_name(block.get("name")))]
        self._kinds[index] = "other"  # server tool blocks: not offered across protocols
        return []

    def _delta(self, data: dict) -> list[NeutralEvent]:
        index = data.get("index")
        if not isinstance(index, int) or index not in self._kinds:
            raise UpstreamProtocol(f"Anthropic content_block_delta for unknown block {index!r}")
        kind = self._kinds[index]
        delta = as_dict(data.get("delta"))
        dtype = delta.get("type")
        if kind == "text" and dtype == "text_delta":
            return [TextDelta(delta["text"])] if as_text(delta.get("text")) else []
        if kind == "thinking" and dtype == "thinking_delta":
            return [ThinkingDelta(delta["thinking"])] if as_text(delta.get("thinking")) else []
        if kind == "thinking" and dtype == "signature_delta":
            return [ThinkingDelta("", {"signature": as_text(delta.get("signature"))})]
        if kind == "tool" and dtype == "input_json_delta":
            self._has_delta.add(index)
            piece = as_text(delta.get("partial_json"))
            return [ToolCallArgsDelta(self._tools[index], piece)] if piece else []
        return []  # citations, and deltas of blocks we do not carry

    # -- what the agent has received (resume.py) -------------------------------------

    def observe(self, data: Any) -> None:
        """The event whose JSON is `data` (as parsed by `feed`) went to the agent."""
        if type(data) is not dict:
            return
        state = self._state
        kind = data.get("type")
        if kind == "content_block_start":
            index = data.get("index")
            if type(index) is not int:
                return
            block = as_dict(data.get("content_block"))
            what = self._kinds.get(index, "other")  # (a tool block the decoder has seen end is "closed")
            state.open = OpenBlock(index, what if what in ("text", "thinking", "tool") else "tool" if what == "closed" else "other",
                                   call_id=as_text(block.get("id")), name=as_text(block.get("name")), tool_index=self._tools.get(index, -1))
            if index in self._tools:
                state.tools[self._tools[index]] = index
            state.next_index = max(state.next_index, index + 1)
        elif kind == "content_block_stop":
            if state.open is not None and state.open.index == data.get("index"):
                state.open = None
        elif kind == "message_start":
            message = as_dict(data.get("message"))
            state.started = True
            state.response_id, state.model = as_text(message.get("id")), as_text(message.get("model"))
            state.usage = decode_usage(message.get("usage"))
        elif kind == "message_delta":
            reason = as_dict(data.get("delta")).get("stop_reason")
            if isinstance(reason, str):
                state.stop = _STOPS.get(reason, "end_turn")
            if isinstance(data.get("usage"), dict):
                state.usage = merge_usage(state.usage, decode_usage(data["usage"]))
        elif kind in ("message_stop", "error"):
            state.ended = True

    lane_observes = False  # observe_lane does nothing: the tap need not call it

    def observe_lane(self, literals: list[bytes], run: bytes, usage: bytes | None = None) -> None:
        """A run of text deltas (their JSON string literals; `run` their bytes) went to the agent
        undecoded: nothing here depends on it."""

    def state(self) -> StreamState:
        """What the agent has received, as observed (a copy)."""
        return self._state.copy()

    def finish(self) -> list[NeutralEvent]:
        """End of stream: an error unless the message ended (message_delta or message_stop)."""
        if self._done:
            return []
        self._done = True
        # message_delta carries the stop reason and final usage; a server that
        # then omits message_stop has still sent the whole message.
        return [] if self._stopped else [truncated("message_stop")]


def decode_response(body: Any) -> list[NeutralEvent]:
    """Neutral events of a non-streaming Message (or error) body."""
    body = require_shape(body, "content", "error")
    if body.get("type") == "error" or "content" not in body:
        return [_error(body.get("error"))]
    events: list[NeutralEvent] = [MessageStart(as_text(body.get("id")), as_text(body.get("model"))), decode_usage(body.get("usage"))]
    tools = 0
    for block in as_list(body.get("content")):
        block = as_dict(block)
        kind = block.get("type")
        if kind == "text" and as_text(block.get("text")):
            events.append(TextDelta(block["text"]))
        elif kind == "thinking":
            events.append(ThinkingDelta(as_text(block.get("thinking"))))
            if as_text(block.get("signature")):
                events.append(ThinkingDelta("", {"signature": block["signature"]}))
        elif kind == "redacted_thinking":
            events.append(ThinkingDelta("", {"redacted": as_text(block.get("data"))}))
        elif kind == "tool_use":
            events += [ToolCallStart(tools, as_text(block.get("id")) or f"toolu_{tools}", tool_name(block.get("name"))), ToolCallArgsDelta(tools, dumps(block.get("input") or {})), ToolCallEnd(tools)]
            tools += 1
    reason = body.get("stop_reason")
    events.append(Stop(_STOPS.get(reason, "end_turn") if isinstance(reason, str) else "end_turn"))
    return events


def decode_error(status: int, body: bytes) -> tuple[str, str]:
    """(neutral error type, message) of an Anthropic error response."""
    data = as_dict(load_body(body))
    error = as_dict(data.get("error"))
    kind = _ERRORS.get(as_text(error.get("type")))
    message = as_text(error.get("message")) or (body[:300].decode("utf-8", "replace") if body else f"HTTP {status}")
    return kind or status_type(status), message
