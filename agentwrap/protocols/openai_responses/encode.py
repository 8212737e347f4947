"""Neutral events to OpenAI Responses API responses: streams, whole Response objects, errors.

Sans-IO. Stream shape: typed events, each with an `event:` line naming its
`type` and an increasing `sequence_number`: response.created and
response.in_progress, then per output item output_item.added, its own deltas
and output_item.done, then response.completed (or response.failed).

Codex CLI (2025-2026) builds its history from output_item.done items and
ends a turn only on response.completed; a stream that closes without it is
retried. It does not handle response.incomplete, so a max_tokens stop is sent
as response.completed with status "incomplete" and incomplete_details.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from agentwrap.protocols._json import dumps_bytes
from agentwrap.protocols._blocks import Block, BlockSequencer, dumps
from agentwrap.protocols.neutral.events import NeutralEvent, Usage, error_status
from agentwrap.protocols.openai_chat.encode import error_object

if TYPE_CHECKING:
    from agentwrap.protocols.resume import StreamState

__all__ = ["StreamEncoder", "encode_response", "encode_error", "response_object"]

# response.error.code values Codex acts on: rate_limit_exceeded (it parses
# "try again in Ns" from the message), insufficient_quota,
# context_length_exceeded; anything else is retried.
_FAILED_CODES = {
    "rate_limit": "rate_limit_exceeded",
    "overloaded": "server_is_overloaded",
    "invalid_request": "invalid_prompt",
    "authentication": "invalid_api_key",
}

def encode_error(error_type: str, message: str, status: int | None = None) -> tuple[int, bytes]:
    """Render a neutral error as OpenAI's (status, JSON body)."""
    return error_status(error_type, status), dumps_bytes({"error": error_object(error_type, message)})


def _usage(usage: Usage) -> dict:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens, "cache_write_tokens": usage.cache_write_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def _item(block: Block, status: str) -> dict:
    """The output item for a block, in its state at `status`."""
    if block.kind == "other":  # an item the neutral model does not carry, open when an encoder resumed
        item = dict(block.meta) if isinstance(block.meta, dict) else {"id": block.item_id, "type": "unknown"}
        if "status" in item:
            item["status"] = status
        return item
    done = status != "in_progress"
    if block.kind == "text":
        content = [{"type": "output_text", "text": block.text, "annotations": [], "logprobs": []}] if done else []
        return {"id": block.item_id, "type": "message", "status": status, "role": "assistant", "content": content}
    if block.kind == "thinking":
        summary = [{"type": "summary_text", "text": block.text}] if done and block.parts else []
        item: dict[str, Any] = {"id": block.item_id, "type": "reasoning", "summary": summary}
        meta = block.meta if isinstance(block.meta, dict) else {}
        if isinstance(meta.get("encrypted_content"), str):
            item["encrypted_content"] = meta["encrypted_content"]
        return item
    if block.tool_kind == "custom":
        item = {"id": block.item_id, "type": "custom_tool_call", "status": status, "call_id": block.call_id, "name": block.name, "input": block.text if done else ""}
    else:
        item = {"id": block.item_id, "type": "function_call", "status": status, "call_id": block.call_id, "name": block.name, "arguments": block.text if done else ""}
    # A call to a tool Codex offered inside a namespace group names it (the
    # translator puts {"namespace": ...} in the ToolCallStart's provider_meta).
    namespace = block.meta.get("namespace") if isinstance(block.meta, dict) else None
    if isinstance(namespace, str) and namespace:
        item["namespace"] = namespace
    return item


_PREFIX = {"text": "msg", "thinking": "rs", "function": "fc", "custom": "ctc"}


class StreamEncoder(BlockSequencer):
    """Neutral events to Responses SSE bytes.

    `created` is the Unix time to report (sans-IO: the shell reads the clock);
    `include_usage` is accepted for every codec's sake and unused (a Response
    always carries its usage). `StreamEncoder.resume(state)` continues a stream
    already under way (resume.py): the next sequence number, and
    response.completed lists the items the agent already has.
    """

    content_type = "text/event-stream"

    def __init__(self, model: str, response_id: str, *, created: int = 0, include_usage: bool = True) -> None:
        super().__init__()
        self.model = model
        self.response_id = response_id
        self.created = created
        self._seq = 0
        self._id_base = response_id.removeprefix("resp_")
        self.final: dict | None = None  # the last Response object sent, once finished
        self._prior: list[dict] = []  # resumed: the items the agent already has
        self._lane_head: tuple[Block, bytes] | None = None  # the text lane's event head for a block

    def _event(self, payload: dict) -> None:
        kind = payload["type"]
        payload["sequence_number"] = self._seq
        self._seq += 1
        self._out.append(f"event: {kind}\ndata: {dumps(payload)}\n\n".encode())

    def _resume(self, state: StreamState) -> None:
        super()._resume(state)
        self._seq = state.sequence_number + 1
        self._prior = list(state.done_items)
        if state.half_started and not state.ended:  # response.created went out alone
            self._started = True
            self._event({"type": "response.in_progress", "response": self._response("in_progress")})

    def _response(self, status: str, usage: Usage | None = None, **extra: Any) -> dict:
        done = [*self._prior, *(_item(b, "completed") for b in self._blocks if b.kind != "prior")] if status != "in_progress" else []
        return response_object(self.response_id, self.model, self.created, status, done, usage, **extra)

    def _on_start(self) -> None:
        self._event({"type": "response.created", "response": self._response("in_progress")})
        self._event({"type": "response.in_progress", "response": self._response("in_progress")})

    def _on_open(self, block: Block) -> None:
        prefix = _PREFIX[block.tool_kind if block.kind == "tool" else block.kind]
        block.item_id = f"{prefix}_{self._id_base}_{block.index}"
        self._event({"type": "response.output_item.added", "output_index": block.index, "item": _item(block, "in_progress")})
        if block.kind == "text":
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            self._event({"type": "response.content_part.added", "item_id": block.item_id, "output_index": block.index, "content_index": 0, "part": part})
        elif block.kind == "thinking":
            self._summary_part("added", block, "")

    def _summary_part(self, which: str, block: Block, text: str) -> None:
        part = {"type": "summary_text", "text": text}
        self._event({"type": f"response.reasoning_summary_part.{which}", "item_id": block.item_id, "output_index": block.index, "summary_index": 0, "part": part})

    def _on_delta(self, block: Block, text: str) -> None:
        where = {"item_id": block.item_id, "output_index": block.index}
        if block.kind == "text":
            self._event({"type": "response.output_text.delta", **where, "content_index": 0, "delta": text, "logprobs": []})
        elif block.kind == "thinking":
            self._event({"type": "response.reasoning_summary_text.delta", **where, "summary_index": 0, "delta": text})
        elif block.tool_kind == "custom":
            self._event({"type": "response.custom_tool_call_input.delta", **where, "delta": text})
        else:
            self._event({"type": "response.function_call_arguments.delta", **where, "delta": text})

    def _text_run(self, block: Block, literals: list[bytes]) -> bytes:
        # The same bytes _on_delta makes for a text block: dumps() keeps insertion order.
        cached = self._lane_head
        if cached is None or cached[0] is not block:
            cached = self._lane_head = (block, (f'event: response.output_text.delta\ndata: {{"type":"response.output_text.delta",'
                                                f'"item_id":{dumps(block.item_id)},"output_index":{block.index},"content_index":0,"delta":').encode())
        head = cached[1]
        seq = self._seq
        out = [b'%b%b,"logprobs":[],"sequence_number":%d}\n\n' % (head, literal, seq + n) for n, literal in enumerate(literals)]
        self._seq = seq + len(literals)
        return b"".join(out)

    def _on_close(self, block: Block) -> None:
        where = {"item_id": block.item_id, "output_index": block.index}
        text = block.text
        if block.kind == "text":
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            self._event({"type": "response.output_text.done", **where, "content_index": 0, "text": text, "logprobs": []})
            self._event({"type": "response.content_part.done", **where, "content_index": 0, "part": part})
        elif block.kind == "thinking":
            self._event({"type": "response.reasoning_summary_text.done", **where, "summary_index": 0, "text": text})
            self._summary_part("done", block, text)
        elif block.kind == "other":
            pass
        elif block.tool_kind == "custom":
            self._event({"type": "response.custom_tool_call_input.done", **where, "input": text})
        else:
            self._event({"type": "response.function_call_arguments.done", **where, "name": block.name, "arguments": text})
        self._event({"type": "response.output_item.done", "output_index": block.index, "item": _item(block, "completed")})

    def _on_error(self, error: Any) -> None:
        self._start()
        code = _FAILED_CODES.get(error.error_type, "server_error")
        self.final = self._response("failed", self._usage, error={"code": code, "message": error.message})
        self._event({"type": "response.failed", "response": self.final})

    def _on_finish(self, reason: str, usage: Usage) -> None:
        if reason == "max_tokens":
            response = self._response("incomplete", usage, incomplete_details={"reason": "max_output_tokens"})
        elif reason == "refusal":
            response = self._response("incomplete", usage, incomplete_details={"reason": "content_filter"})
        else:
            response = self._response("completed", usage)
        self.final = response
        self._event({"type": "response.completed", "response": response})


def response_object(response_id: str, model: str, created: int, status: str, output: list, usage: Usage | None, **extra: Any) -> dict:
    """A Response object with the fields the SDK requires."""
    response: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": _usage(usage) if usage is not None else None,
    }
    response.update(extra)
    return response


def encode_response(events: Iterable[NeutralEvent], model: str, response_id: str, *, created: int = 0) -> dict:
    """The non-streaming Response object for `events` (status "failed" on a StreamError)."""
    encoder = StreamEncoder(model, response_id, created=created)
    for event in events:
        encoder.feed(event)
    encoder.finish()
    return encoder.final
