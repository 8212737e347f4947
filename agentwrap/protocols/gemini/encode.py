"""Neutral events to Gemini API responses: streams, whole responses, errors.

Sans-IO. The stream is `streamGenerateContent?alt=sse`: every event is
`data: {GenerateContentResponse}` (the google-genai SDKs only recognise
`data: ` with the space). Gemini has no argument deltas, so tool calls are
buffered and sent as one functionCall part when they end; arguments that are
not a JSON object arrive as `{"_raw": "<text>"}` so nothing is lost silently.

Gemini CLI (2025-2026) drops thought parts from the history it sends back,
so a thinking signature is moved onto the next non-thought part (where the
Gemini API itself puts it); it retries a stream that ends without a
finishReason or with no text and no function call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from agentwrap.protocols._json import dumps_bytes
from agentwrap.protocols._blocks import Block, BlockSequencer, Collector, dumps, parse_args
from agentwrap.protocols.neutral.events import NeutralEvent, Usage, error_status

if TYPE_CHECKING:
    from agentwrap.protocols.resume import StreamState

__all__ = ["StreamEncoder", "encode_response", "encode_error"]

_STATUS_NAMES = {
    "invalid_request": "INVALID_ARGUMENT",
    "authentication": "UNAUTHENTICATED",
    "permission": "PERMISSION_DENIED",
    "not_found": "NOT_FOUND",
    "rate_limit": "RESOURCE_EXHAUSTED",
    "overloaded": "UNAVAILABLE",
    "timeout": "DEADLINE_EXCEEDED",
    "upstream_unreachable": "UNAVAILABLE",
    "api_error": "INTERNAL",
}

_FINISH = {"end_turn": "STOP", "tool_use": "STOP", "stop_sequence": "STOP", "max_tokens": "MAX_TOKENS", "refusal": "SAFETY"}


def _error_body(error_type: str, message: str, status: int) -> dict:
    return {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(error_type, "INTERNAL")}}


def encode_error(error_type: str, message: str, status: int | None = None) -> tuple[int, bytes]:
    """Render a neutral error as Google's (status, JSON body)."""
    code = error_status(error_type, status)
    return code, dumps_bytes(_error_body(error_type, message, code))


def _usage(usage: Usage) -> dict:
    return {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": usage.output_tokens,
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
        "cachedContentTokenCount": usage.cache_read_tokens,
        "thoughtsTokenCount": 0,
    }


def _signature(meta: Any) -> str | None:
    value = meta.get("thought_signature") if isinstance(meta, dict) else None
    return value if isinstance(value, str) else None


def _call_part(block: Block) -> dict:
    args = {"input": block.text} if block.tool_kind == "custom" else parse_args(block.text)
    call: dict[str, Any] = {"name": block.name, "args": args}
    if block.call_id:
        call["id"] = block.call_id
    part: dict[str, Any] = {"functionCall": call}
    signature = _signature(block.meta)
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


class StreamEncoder(BlockSequencer):
    """Neutral events to Gemini `alt=sse` bytes. Ids and model come from the constructor;
    `created` and `include_usage` are accepted for every codec's sake and unused.
    `StreamEncoder.resume(state)` continues a stream already under way (resume.py)."""

    content_type = "text/event-stream"

    def __init__(self, model: str, response_id: str, *, created: int = 0, include_usage: bool = True) -> None:
        super().__init__()
        self.model = model
        self.response_id = response_id
        self._head = "data: "  # resumed in a Code Assist stream: each object wrapped as {"response": ...}
        self._tail = f',"modelVersion":{dumps(model)},"responseId":{dumps(response_id)}}}\n\n'
        self._pending_signature: str | None = None

    def _resume(self, state: StreamState) -> None:
        super()._resume(state)
        if state.wrap:
            self._head = f"data: {{{dumps(state.wrap)}:"
            self._tail = self._tail[:-2] + "}\n\n"

    def _chunk(self, parts: list[dict], extra: str = "") -> None:
        content = dumps({"role": "model", "parts": parts})
        self._out.append(f'{self._head}{{"candidates":[{{"content":{content}{extra},"index":0}}]{self._tail}'.encode())

    def _visible(self, part: dict) -> dict:
        if self._pending_signature is not None and "thoughtSignature" not in part:
            part["thoughtSignature"] = self._pending_signature
        self._pending_signature = None
        return part

    def _on_delta(self, block: Block, text: str) -> None:
        if block.kind == "text":
            self._chunk([self._visible({"text": text})])
        elif block.kind == "thinking":
            self._chunk([{"text": text, "thought": True}])
        # tool arguments wait in block.parts for _on_close

    def _text_run(self, block: Block, literals: list[bytes]) -> bytes | None:
        if self._pending_signature is not None:
            return None  # the next text part carries it: the general path
        head = self._head.encode() + b'{"candidates":[{"content":{"role":"model","parts":[{"text":'
        tail = b'}]},"index":0}]' + self._tail.encode()
        return head + (tail + head).join(literals) + tail

    def _on_meta(self, block: Block, meta: Any) -> None:
        signature = _signature(meta)
        if signature is not None:
            self._pending_signature = signature

    def _on_close(self, block: Block) -> None:
        if block.kind == "tool":
            self._chunk([self._visible(_call_part(block))])

    def _on_error(self, error: Any) -> None:
        self._out.append(f"data: {dumps(_error_body(error.error_type, error.message, error.status))}\n\n".encode())

    def _on_finish(self, reason: str, usage: Usage) -> None:
        parts = [{"text": "", "thoughtSignature": self._pending_signature}] if self._pending_signature else []
        self._pending_signature = None
        extra = f',"finishReason":"{_FINISH.get(reason, "STOP")}"'
        content = dumps({"role": "model", "parts": parts})
        self._out.append(
            f'{self._head}{{"candidates":[{{"content":{content}{extra},"index":0}}],"usageMetadata":{dumps(_usage(usage))}{self._tail}'.encode()
        )


def encode_response(events: Iterable[NeutralEvent], model: str, response_id: str, *, created: int = 0) -> dict:
    """The non-streaming GenerateContentResponse for `events`; an error body if they hold a StreamError.
    (Gemini reports no creation time: `created` is unused.)"""
    collected = Collector(events)
    if collected.error is not None:
        return _error_body(collected.error.error_type, collected.error.message, collected.error.status)
    parts: list[dict] = []
    signature = None
    for block in collected.blocks:
        if block.kind == "thinking":
            parts.append({"text": block.text, "thought": True})
            signature = _signature(block.meta) or signature
            continue
        part = {"text": block.text} if block.kind == "text" else _call_part(block)
        if signature is not None:
            part.setdefault("thoughtSignature", signature)
            signature = None
        parts.append(part)
    if signature is not None:
        parts.append({"text": "", "thoughtSignature": signature})
    candidate = {"content": {"role": "model", "parts": parts}, "finishReason": _FINISH.get(collected.reason, "STOP"), "index": 0}
    return {"candidates": [candidate], "usageMetadata": _usage(collected.usage), "modelVersion": model, "responseId": response_id}
