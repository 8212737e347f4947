"""OpenAI Chat Completions responses (stream, whole, error) to neutral events.

OpenAI-compatible servers differ (seen 2024-2026): tool-call arguments may
come whole in the first delta with the name; several calls may reuse index 0
with new ids (Ollama, some vLLM parsers); usage may ride on the finish chunk
or on a later chunk with `choices: []`; thinking is `reasoning_content`
(DeepSeek, vLLM) or `reasoning` (OpenRouter, Ollama); some servers omit
`data: [DONE]` after the finish chunk. A call ends as soon as it is known
complete: when a later call starts and its arguments already parse as JSON,
or at finish_reason. Sans-IO.
"""

from __future__ import annotations

import json
from typing import Any

from agentwrap.errors import UpstreamProtocol
from agentwrap.protocols._blocks import dumps
from agentwrap.protocols._lenient import as_dict, as_list, as_text, load, load_body, require_shape, safe_id, tool_name, truncated, usage
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
    merge_usage,
    status_type,
)
from agentwrap.protocols.resume import StreamState
from agentwrap.protocols.sse import SseEvent

__all__ = ["StreamDecoder", "decode_response", "decode_error", "decode_usage", "error_event", "USAGE_KEYS"]

_FINISH = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use", "content_filter": "refusal"}
_CODES = {
    "rate_limit_exceeded": "rate_limit",
    "insufficient_quota": "permission",
    "invalid_api_key": "authentication",
    "model_not_found": "not_found",
    "server_is_overloaded": "overloaded",
    "context_length_exceeded": "invalid_request",
}


def decode_usage(raw: Any) -> Usage:
    """Neutral token counts of a Chat `usage` object."""
    raw = as_dict(raw)
    details = as_dict(raw.get("prompt_tokens_details"))
    # DeepSeek reports cache hits as prompt_cache_hit_tokens.
    cached = details.get("cached_tokens") or raw.get("prompt_cache_hit_tokens")
    return usage(raw.get("prompt_tokens"), raw.get("completion_tokens"), cached, details.get("cache_write_tokens"))


# The JSON keys each Usage field is read from (input, output, cache read, cache write).
USAGE_KEYS = ((b'"prompt_tokens"',), (b'"completion_tokens"',), (b'"cached_tokens"', b'"prompt_cache_hit_tokens"'), (b'"cache_write_tokens"',))


def error_event(error: Any, status: int = 0) -> StreamError:
    """A StreamError for an OpenAI-style `error` object (Chat and Responses)."""
    error = as_dict(error)
    code = as_text(error.get("code")) or as_text(error.get("type"))
    kind = _CODES.get(code) or (status_type(status) if status else "rate_limit" if "rate_limit" in code else "api_error")
    return StreamError(kind, as_text(error.get("message")) or code or "upstream error", status or 500)


class _Call:
    __slots__ = ("index", "call_id", "name", "args", "started", "ended")

    def __init__(self, index: int) -> None:
        self.index = index
        self.call_id = ""
        self.name = ""
        self.args: list[str] = []
        self.started = False
        self.ended = False

    def complete(self) -> bool:
        try:
            json.loads("".join(self.args))
        except ValueError:
            return False
        return True


_LANE_EMPTY = ("reasoning_content", "reasoning", "refusal", "tool_calls")  # ignored when empty


class StreamDecoder:
    """Chat SSE chunks to neutral events; see the module docstring."""

    # The text lane (lane.py): what a plain text chunk ignores once the stream is under way.
    lane_volatile = ("id", "created", "system_fingerprint", "obfuscation")
    lane_usage_key: str | None = None  # usage never rides on a text delta
    lane_usage = staticmethod(decode_usage)
    lane_usage_keys = USAGE_KEYS

    @staticmethod
    def lane_locate(data: Any) -> tuple[dict, str] | None:
        """Where a chunk this decoder turns into exactly one TextDelta keeps its text; else None."""
        if type(data) is not dict or "error" in data or isinstance(data.get("usage"), dict):
            return None
        choices = data.get("choices")
        if type(choices) is not list or len(choices) != 1 or type(choices[0]) is not dict:
            return None
        choice = choices[0]
        delta = choice.get("delta")
        if choice.get("finish_reason") is not None or type(delta) is not dict or type(delta.get("content")) is not str:
            return None
        if any(value for key, value in delta.items() if key in _LANE_EMPTY):
            return None
        return delta, "content"

    def lane_ready(self) -> bool:
        """Whether a chunk of the lane's shape now decodes to its text alone."""
        return self._started and not self._finished and not self._done

    def __init__(self, id_hint: str = "", *, observe: bool = False) -> None:
        self._hint = safe_id(id_hint) or "aw"
        self._calls: dict[Any, _Call] = {}  # wire index (or a stand-in) -> call
        self._order: list[_Call] = []
        self._started = False
        self._finished = False
        self._done = False
        self._state = StreamState()
        self._sent: dict[Any, str] = {}  # wire index -> id of the call the agent has there
        self.data: Any = None  # the JSON of the chunk fed last ("[DONE]"; None: not parsed)
        if observe:  # every chunk fed counts as sent (else the caller says which did: `observe`)
            self.feed = self._feed_observed  # type: ignore[method-assign]

    def _feed_observed(self, event: SseEvent) -> list[NeutralEvent]:
        out = StreamDecoder.feed(self, event)
        self.observe(self.data)
        return out

    def feed(self, event: SseEvent) -> list[NeutralEvent]:
        if self._done:
            self.data = None
            return []
        if event.data.strip() == "[DONE]":
            self._done = True
            self.data = "[DONE]"
            return [] if self._finished else self._finish("end_turn")
        self.data = data = load(event)
        if not isinstance(data, dict):
            raise UpstreamProtocol(f"Chat stream chunk is not an object: {event.data[:120]!r}")
        # Fast path for the chunk that makes up almost all of a stream: one choice
        # whose delta is only a piece of text (measured: half the per-event cost).
        choices = data.get("choices")
        if self._started and not self._finished and type(choices) is list and len(choices) == 1 and data.get("usage") is None:
            choice = choices[0]
            if type(choice) is dict and choice.get("finish_reason") is None:
                delta = choice.get("delta")
                if type(delta) is dict and len(delta) == 1 and type(delta.get("content")) is str:
                    return [TextDelta(delta["content"])] if delta["content"] else []
        if "error" in data:
            self._done = True
            return [error_event(data["error"])]
        out: list[NeutralEvent] = []
        if not self._started:
            self._started = True
            out.append(MessageStart(as_text(data.get("id")), as_text(data.get("model"))))
        choices = [c for c in as_list(data.get("choices")) if isinstance(c, dict)]
        if choices and not self._finished:
            choice = choices[0]
            delta = as_dict(choice.get("delta"))
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                out.append(ThinkingDelta(reasoning))
            for key in ("content", "refusal"):
                if as_text(delta.get(key)):
                    out.append(TextDelta(delta[key]))
            for position, call in enumerate(as_list(delta.get("tool_calls"))):
                out += self._tool_delta(as_dict(call), position)
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                out += self._finish(_FINISH.get(reason, "end_turn"))
        if isinstance(data.get("usage"), dict):
            out.append(decode_usage(data["usage"]))
        return out

    def _tool_delta(self, raw: dict, position: int) -> list[NeutralEvent]:
        out: list[NeutralEvent] = []
        key = raw.get("index") if isinstance(raw.get("index"), int) else position
        function = as_dict(raw.get("function")) or as_dict(raw.get("custom"))
        call_id = as_text(raw.get("id"))
        call = self._calls.get(key)
        name = as_text(function.get("name"))
        if call is not None and call_id and call.call_id and call_id != call.call_id and name and call.complete():
            # A new id and name at a known index is a new call (Ollama sends
            # every call at index 0); a bare new id is a server's per-chunk id.
            self._calls[("reused", len(self._order))] = call
            call = None
        if call is None:
            call = _Call(len(self._order))
            self._calls[key] = call
            self._order.append(call)
            out += self._end_complete(call)
        call.call_id = call.call_id or call_id
        call.name = call.name or name
        arguments = function.get("arguments", function.get("input"))
        piece = arguments if isinstance(arguments, str) else dumps(arguments) if isinstance(arguments, dict) else ""
        if call.ended:
            return out  # the call already parsed as complete JSON
        if piece:
            call.args.append(piece)
        if call.started:
            if piece:
                out.append(ToolCallArgsDelta(call.index, piece))
        elif call.name:
            out += self._start(call)
        return out

    def _start(self, call: _Call) -> list[NeutralEvent]:
        call.started = True
        out: list[NeutralEvent] = [ToolCallStart(call.index, call.call_id or f"call_{self._hint}_{call.index}", tool_name(call.name))]
        if call.args:
            out.append(ToolCallArgsDelta(call.index, "".join(call.args)))
        return out

    def _end_complete(self, newer: _Call) -> list[NeutralEvent]:
        # Servers stream calls one after the other; an earlier call whose
        # arguments already parse is done, so the agent can see it end now.
        out: list[NeutralEvent] = []
        for call in self._order:
            if call is not newer and call.started and not call.ended and call.complete():
                call.ended = True
                out.append(ToolCallEnd(call.index))
        return out

    def _finish(self, reason: str) -> list[NeutralEvent]:
        self._finished = True
        out: list[NeutralEvent] = []
        for call in self._order:
            if not call.started:
                out += self._start(call)
            if not call.ended:
                call.ended = True
                out.append(ToolCallEnd(call.index))
        if reason == "end_turn" and self._order:
            reason = "tool_use"  # some servers end tool turns with "stop"
        return out + [Stop(reason)]

    # -- what the agent has received (resume.py) -------------------------------------

    def observe(self, data: Any) -> None:
        """The chunk whose JSON is `data` (as parsed by `feed`) went to the agent."""
        state = self._state
        if type(data) is not dict:
            if data == "[DONE]":
                state.ended = True
            return
        if "error" in data:
            state.ended = True
            return
        if not state.started:
            state.started = True
            state.response_id, state.model = as_text(data.get("id")), as_text(data.get("model"))
            state.created = data["created"] if type(data.get("created")) is int else 0
        choices = data.get("choices")
        if type(choices) is list and choices and type(choices[0]) is dict:
            choice = choices[0]
            delta = choice.get("delta")
            if type(delta) is dict and delta.get("tool_calls"):
                for position, call in enumerate(as_list(delta["tool_calls"])):
                    self._observe_call(as_dict(call), position)
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                state.stop = _FINISH.get(reason, "end_turn")
        if isinstance(data.get("usage"), dict):
            state.usage = merge_usage(state.usage, decode_usage(data["usage"]))

    def _observe_call(self, raw: dict, position: int) -> None:
        state = self._state
        wire = raw.get("index") if isinstance(raw.get("index"), int) else position
        call_id = as_text(raw.get("id"))
        if wire in self._sent and (not call_id or call_id == self._sent[wire]):
            return  # more of a call the agent has
        # A call new to the agent: neutral indices follow the order calls first appear in.
        self._sent[wire] = call_id
        state.tools[len(state.tools)] = wire
        state.next_tool = max(state.next_tool, wire + 1)

    lane_observes = False  # observe_lane does nothing: the tap need not call it

    def observe_lane(self, literals: list[bytes], run: bytes, usage: bytes | None = None) -> None:
        """A run of text chunks went to the agent undecoded: nothing here depends on it."""

    def state(self) -> StreamState:
        """What the agent has received, as observed (a copy)."""
        return self._state.copy()

    def finish(self) -> list[NeutralEvent]:
        """End of stream: an error unless a finish_reason or [DONE] came."""
        if self._done:
            return []
        self._done = True
        return [] if self._finished else [truncated("a finish_reason")]


def decode_response(body: Any) -> list[NeutralEvent]:
    """Neutral events of a non-streaming chat.completion (or error) body."""
    body = require_shape(body, "choices", "error")
    if "error" in body:
        return [error_event(body["error"])]
    events: list[NeutralEvent] = [MessageStart(as_text(body.get("id")), as_text(body.get("model")))]
    choice = as_dict(next(iter(as_list(body.get("choices"))), None))
    message = as_dict(choice.get("message"))
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        events.append(ThinkingDelta(reasoning))
    for key in ("content", "refusal"):
        if as_text(message.get(key)):
            events.append(TextDelta(message[key]))
    calls = [as_dict(c) for c in as_list(message.get("tool_calls"))]
    for n, call in enumerate(calls):
        function = as_dict(call.get("function"))
        arguments = function.get("arguments")
        arguments = arguments if isinstance(arguments, str) else dumps(arguments or {})
        events += [ToolCallStart(n, as_text(call.get("id")) or f"call_{n}", tool_name(function.get("name"))), ToolCallArgsDelta(n, arguments), ToolCallEnd(n)]
    reason = _FINISH.get(as_text(choice.get("finish_reason")), "end_turn")
    events.append(Stop("tool_use" if reason == "end_turn" and calls else reason))
    if isinstance(body.get("usage"), dict):
        events.append(decode_usage(body["usage"]))
    return events


def decode_error(status: int, body: bytes) -> tuple[str, str]:
    """(neutral error type, message) of an OpenAI error response."""
    data = load_body(body)
    if isinstance(data, list) and data:
        data = data[0]
    error = as_dict(as_dict(data).get("error"))
    code = as_text(error.get("code")) or as_text(error.get("type"))
    kind = _CODES.get(code) or status_type(status)
    message = as_text(error.get("message")) or (body[:300].decode("utf-8", "replace") if body else f"HTTP {status}")
    return kind, message

