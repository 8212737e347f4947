"""Neutral events to OpenAI Chat Completions responses: streams, whole completions, errors.

Sans-IO. Stream shape: `data: {chat.completion.chunk}` lines, the first delta
carrying the role, tool calls addressed by `index`, a chunk with
finish_reason, an optional usage chunk with `choices: []`, then
`data: [DONE]`. Chat calls can interleave natively, so no sequencing is needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from agentwrap.protocols._json import dumps_bytes
from agentwrap.protocols._blocks import Collector, dumps
from agentwrap.protocols.neutral.events import NeutralEvent, Usage, error_status, merge_usage

if TYPE_CHECKING:
    from agentwrap.protocols.resume import StreamState

__all__ = ["StreamEncoder", "encode_response", "encode_error", "error_object", "ERROR_TYPES"]

# (type, code) as the OpenAI API sends them; clients mostly key on the status.
ERROR_TYPES = {
    "invalid_request": ("invalid_request_error", None),
    "authentication": ("invalid_request_error", "invalid_api_key"),
    "permission": ("permission_error", "permission_denied"),
    "not_found": ("invalid_request_error", "model_not_found"),
    "rate_limit": ("requests", "rate_limit_exceeded"),
    "overloaded": ("service_unavailable_error", "server_is_overloaded"),
    "timeout": ("server_error", "timeout"),
    "upstream_unreachable": ("server_error", "upstream_unreachable"),
    "api_error": ("server_error", "server_error"),
}

_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length", "refusal": "content_filter"}


def error_object(error_type: str, message: str) -> dict:
    """The inner `error` object shared by Chat and Responses error bodies."""
    kind, code = ERROR_TYPES.get(error_type, ERROR_TYPES["api_error"])
    return {"message": message, "type": kind, "param": None, "code": code}


def encode_error(error_type: str, message: str, status: int | None = None) -> tuple[int, bytes]:
    """Render a neutral error as OpenAI's (status, JSON body)."""
    return error_status(error_type, status), dumps_bytes({"error": error_object(error_type, message)})


def _usage(usage: Usage) -> dict:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
    }


class StreamEncoder:
    """Neutral events to Chat Completions SSE bytes.

    `created` is the Unix time to report (sans-IO: the shell reads the clock).
    `include_usage` mirrors the request's `stream_options.include_usage`:
    some older clients index `choices[0]` and break on the usage chunk.
    Thinking goes out as `delta.reasoning_content`, the de facto extension
    (DeepSeek, vLLM, OpenRouter); the OpenAI SDK ignores it.
    """

    content_type = "text/event-stream"

    def __init__(self, model: str, response_id: str, *, created: int = 0, include_usage: bool = True) -> None:
        self.model = model
        self.response_id = response_id
        self.created = created
        self.include_usage = include_usage
        self._prefix = f'{{"id":{dumps(response_id)},"object":"chat.completion.chunk","created":{created},"model":{dumps(model)},'
        self._role_sent = False
        self._tools: dict[int, tuple[int, str]] = {}  # neutral index -> (wire index, tool kind)
        self._next_wire = 0  # the wire index of the next call
        self._open_custom: set[int] = set()
        self._stop: str | None = None
        self._finish_sent = False
        self._usage: Usage | None = None
        self._done = False

    @classmethod
    def resume(cls, state: StreamState, *, include_usage: bool = True) -> StreamEncoder:
        """The encoder of the rest of the stream `state` describes (resume.py): the same id,
        model and created, no second role, new calls after the agent's, no second finish chunk."""
        encoder = cls(state.model, state.response_id, created=state.created, include_usage=include_usage)
        encoder._role_sent = state.started
        encoder._tools = {n: (wire, "function") for n, wire in state.tools.items()}
        encoder._next_wire = state.next_tool
        if state.stop is not None:
            encoder._stop, encoder._finish_sent = state.stop, True
        encoder._done = state.ended
        return encoder

    def _chunk(self, delta: dict, finish: str | None = None) -> bytes:
        if not self._role_sent:
            self._role_sent = True
            delta = {"role": "assistant", **delta}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return f'data: {self._prefix}"choices":[{dumps(choice)}]}}\n\n'.encode()

    def text_run(self, literals: list[bytes], joined: bytes) -> bytes | None:
        """The text lane (lane.py): the chunks of `TextDelta(t)` for each text, built from its
        JSON string literal; None when the general path must."""
        if self._done or self._stop is not None or not self._role_sent:
            return None
        head = f'data: {self._prefix}"choices":[{{"index":0,"delta":{{"content":'.encode()
        tail = b'},"logprobs":null,"finish_reason":null}]}\n\n'
        return head + (tail + head).join(literals) + tail

    def feed(self, event: NeutralEvent) -> bytes:
        if self._done:
            return b""
        kind = event.kind
        if self._stop is not None and kind not in ("usage", "stream_error"):
            return b""  # nothing may follow finish_reason but usage
        if kind == "text_delta":
            return self._chunk({"content": event.text}) if event.text else b""
        if kind == "thinking_delta":
            return self._chunk({"reasoning_content": event.text}) if event.text else b""
        if kind == "tool_call_start":
            if event.index in self._tools:
                return b""
            wire = self._next_wire
            self._next_wire += 1
            self._tools[event.index] = (wire, event.tool_kind)
            # A custom (freeform) call travels as a function whose arguments
            # are {"input": "<text>"}, escaped piecewise as it streams.
            arguments = ""
            if event.tool_kind == "custom":
                arguments = '{"input":"'
                self._open_custom.add(event.index)
            call = {"index": wire, "id": event.call_id, "type": "function", "function": {"name": event.name, "arguments": arguments}}
            return self._chunk({"tool_calls": [call]})
        if kind == "tool_call_args_delta":
            known = self._tools.get(event.index)
            if known is None or not event.delta:
                return b""
            wire, tool_kind = known
            piece = dumps(event.delta)[1:-1] if tool_kind == "custom" else event.delta
            return self._chunk({"tool_calls": [{"index": wire, "function": {"arguments": piece}}]})
        if kind == "tool_call_end":
            return self._end_custom(event.index)
        if kind == "usage":
            self._usage = merge_usage(self._usage, event)
            return b""
        if kind == "stop":
            # The finish_reason chunk goes out in finish(), at the end of the upstream
            # stream: an upstream failure after the stop reason but before the stream's
            # proper end then reaches the agent as an error, not as a finished answer
            # followed by an error (which Chat clients cannot represent).
            self._stop = event.reason
            return b""
        if kind == "stream_error":
            self._done = True
            # The OpenAI SDK raises APIError on a data object with "error".
            return f"data: {dumps({'error': error_object(event.error_type, event.message)})}\n\n".encode()
        if kind == "message_start" and not self._role_sent:
            return self._chunk({"content": ""})
        return b""

    def _end_custom(self, index: int) -> bytes:
        if index not in self._open_custom:
            return b""
        self._open_custom.discard(index)
        return self._chunk({"tool_calls": [{"index": self._tools[index][0], "function": {"arguments": '"}'}}]})

    def _finish_chunk(self) -> bytes:
        if self._finish_sent:
            return b""
        out = b"".join(self._end_custom(index) for index in sorted(self._open_custom))
        self._finish_sent = True
        reason = self._stop if self._stop not in (None, "error") else "end_turn"
        if reason == "end_turn" and self._tools:
            reason = "tool_use"  # agents run tools only on finish_reason tool_calls
        return out + self._chunk({}, _FINISH.get(reason, "stop"))

    def finish(self) -> bytes:
        """Emit the finish chunk if missing, the usage chunk and `[DONE]`, once."""
        if self._done:
            return b""
        self._done = True
        out = self._finish_chunk()
        if self.include_usage and self._usage is not None:
            out += f'data: {self._prefix}"choices":[],"usage":{dumps(_usage(self._usage))}}}\n\n'.encode()
        return out + b"data: [DONE]\n\n"


def encode_response(events: Iterable[NeutralEvent], model: str, response_id: str, *, created: int = 0) -> dict:
    """The non-streaming chat.completion for `events`; an error body if they hold a StreamError."""
    collected = Collector(events)
    if collected.error is not None:
        return {"error": error_object(collected.error.error_type, collected.error.message)}
    texts, thoughts, calls = [], [], []
    for block in collected.blocks:
        if block.kind == "text":
            texts.append(block.text)
        elif block.kind == "thinking":
            thoughts.append(block.text)
        else:
            arguments = dumps({"input": block.text}) if block.tool_kind == "custom" else block.text
            calls.append({"id": block.call_id, "type": "function", "function": {"name": block.name, "arguments": arguments}})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": _FINISH.get(collected.reason, "stop")}
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": _usage(collected.usage),
    }
