"""Neutral events to Anthropic Messages responses: streams, whole messages, errors.

Sans-IO. Stream shape (docs.anthropic.com "Streaming Messages"): message_start,
then per block content_block_start / content_block_delta* / content_block_stop,
then message_delta (stop_reason, usage) and message_stop. Each SSE event needs
its `event:` line: the Python SDK (2.x) skips events without one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agentwrap.protocols._json import dumps_bytes
from agentwrap.protocols._blocks import Block, BlockSequencer, Collector, dumps, parse_args
from agentwrap.protocols.neutral.events import NeutralEvent, Usage, error_status
from agentwrap.protocols.sse import encode_sse

__all__ = ["StreamEncoder", "encode_response", "encode_error"]

_ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "rate_limit": "rate_limit_error",
    "overloaded": "overloaded_error",
    "timeout": "timeout_error",
    "upstream_unreachable": "api_error",
    "api_error": "api_error",
}

# Neutral stop reasons are Anthropic's own, except "error".
_STOP_REASONS = {"end_turn", "tool_use", "max_tokens", "stop_sequence", "refusal", "pause_turn"}


def _error_body(error_type: str, message: str) -> dict:
    return {"type": "error", "error": {"type": _ERROR_TYPES.get(error_type, "api_error"), "message": message}}


def encode_error(error_type: str, message: str, status: int | None = None) -> tuple[int, bytes]:
    """Render a neutral error as Anthropic's (status, JSON body); overloaded is 529."""
    return error_status(error_type, status, overloaded=529), dumps_bytes(_error_body(error_type, message))


def _usage(usage: Usage) -> dict:
    # Neutral input_tokens includes cached tokens; Anthropic counts them apart.
    uncached = max(0, usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens)
    return {
        "input_tokens": uncached,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
    }


def _stop_reason(reason: str) -> str:
    return reason if reason in _STOP_REASONS else "end_turn"


def _custom_prefix(block: Block) -> str:
    # Anthropic has no freeform tools: a custom call's text input travels as
    # the JSON object {"input": "<text>"}, escaped piecewise as it streams.
    return '{"input":"' if block.tool_kind == "custom" else ""


def _piece(block: Block, text: str) -> str:
    return dumps(text)[1:-1] if block.tool_kind == "custom" else text


_TEXT_DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":%b}}\n\n'
_TEXT_HEAD, _TEXT_TAIL = _TEXT_DELTA.split(b"%b")  # the text lane's pieces


def _event(name: str, payload: dict) -> bytes:
    return encode_sse(dumps(payload), name)


class StreamEncoder(BlockSequencer):
    """Neutral events to Anthropic SSE bytes. Ids and model come from the constructor;
    `created` and `include_usage` are accepted for every codec's sake and unused.
    `StreamEncoder.resume(state)` continues a stream already under way (resume.py)."""

    content_type = "text/event-stream"
    eager_start = False  # wait for Usage so message_start can carry input tokens

    def __init__(self, model: str, response_id: str, *, created: int = 0, include_usage: bool = True) -> None:
        super().__init__()
        self.model = model
        self.response_id = response_id

    def _on_start(self) -> None:
        message = {
            "id": self.response_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage(self._usage or Usage()),
        }
        self._out.append(_event("message_start", {"type": "message_start", "message": message}))

    def _on_open(self, block: Block) -> None:
        if block.kind == "text":
            content: dict[str, Any] = {"type": "text", "text": ""}
        elif block.kind == "thinking":
            content = {"type": "thinking", "thinking": "", "signature": ""}
        else:
            content = {"type": "tool_use", "id": block.call_id, "name": block.name, "input": {}}
        self._out.append(_event("content_block_start", {"type": "content_block_start", "index": block.index, "content_block": content}))
        if block.kind == "tool" and block.tool_kind == "custom":
            self._json_delta(block, _custom_prefix(block))

    def _on_delta(self, block: Block, text: str) -> None:
        if block.kind == "text":
            # The per-token event: its bytes written directly (the same bytes the generic
            # path makes), since it is most of every stream.
            self._out.append(_TEXT_DELTA % (block.index, dumps(text).encode()))
            return
        if block.kind == "thinking":
            delta = {"type": "thinking_delta", "thinking": text}
        else:
            self._json_delta(block, _piece(block, text))
            return
        self._out.append(_event("content_block_delta", {"type": "content_block_delta", "index": block.index, "delta": delta}))

    def _text_run(self, block: Block, literals: list[bytes]) -> bytes:
        head = _TEXT_HEAD % block.index
        if len(literals) == 1:
            return head + literals[0] + _TEXT_TAIL
        return head + (_TEXT_TAIL + head).join(literals) + _TEXT_TAIL

    def _json_delta(self, block: Block, partial: str) -> None:
        delta = {"type": "input_json_delta", "partial_json": partial}
        self._out.append(_event("content_block_delta", {"type": "content_block_delta", "index": block.index, "delta": delta}))

    def _on_meta(self, block: Block, meta: Any) -> None:
        signature = meta.get("signature") if isinstance(meta, dict) else None
        if isinstance(signature, str):
            delta = {"type": "signature_delta", "signature": signature}
            self._out.append(_event("content_block_delta", {"type": "content_block_delta", "index": block.index, "delta": delta}))

    def _on_close(self, block: Block) -> None:
        if block.kind == "tool" and block.tool_kind == "custom":
            self._json_delta(block, '"}')
        self._out.append(_event("content_block_stop", {"type": "content_block_stop", "index": block.index}))

    def _on_error(self, error: Any) -> None:
        # An error ends the stream at once: no block stops, no message_stop.
        self._out.append(_event("error", _error_body(error.error_type, error.message)))

    def _on_finish(self, reason: str, usage: Usage) -> None:
        if self._stop_sent:  # resumed after the upstream's own message_delta
            self._out.append(_event("message_stop", {"type": "message_stop"}))
            return
        delta = {"stop_reason": _stop_reason(reason), "stop_sequence": None}
        # Usage on message_delta is cumulative and may repeat the input counts,
        # which a translated upstream (OpenAI, Gemini) only reports at the end.
        self._out.append(_event("message_delta", {"type": "message_delta", "delta": delta, "usage": _usage(usage)}))
        self._out.append(_event("message_stop", {"type": "message_stop"}))


def encode_response(events: Iterable[NeutralEvent], model: str, response_id: str, *, created: int = 0) -> dict:
    """The non-streaming Message object for `events`; an error body if they hold a StreamError.
    (A Message has no creation time: `created` is unused.)"""
    collected = Collector(events)
    if collected.error is not None:
        return _error_body(collected.error.error_type, collected.error.message)
    content: list[dict] = []
    for block in collected.blocks:
        if block.kind == "text":
            content.append({"type": "text", "text": block.text})
        elif block.kind == "thinking":
            meta = block.meta if isinstance(block.meta, dict) else {}
            content.append({"type": "thinking", "thinking": block.text, "signature": meta.get("signature", "")})
        elif block.tool_kind == "custom":
            content.append({"type": "tool_use", "id": block.call_id, "name": block.name, "input": {"input": block.text}})
        else:
            content.append({"type": "tool_use", "id": block.call_id, "name": block.name, "input": parse_args(block.text)})
    return {
        "id": response_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _stop_reason(collected.reason),
        "stop_sequence": None,
        "usage": _usage(collected.usage),
    }
