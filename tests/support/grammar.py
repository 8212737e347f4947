"""Stream grammar validators for the four wire protocols.

Each `validate_*` takes the `SseEvent`s of one response stream, asserts the
protocol's event order and required fields, and returns a `Turn`: what a
client would accumulate from the stream, so tests can compare protocols.
`strict_json=False` skips the "tool arguments are valid JSON" check, for
streams built from arbitrary neutral events. `tolerate` names deviations of a
recorded upstream (tests/fixtures/streams) that a pass-through stream keeps, so that a
test of what agentwrap adds to such a stream can still check everything else:
"tool_input_in_start" (Anthropic: a tool_use block starts with its input),
"reused_index" (Chat: every call at index 0 with role and id repeated,
Ollama), "no_in_progress" (Responses: no response.in_progress),
"abridged_output" (Responses: response.completed lists fewer items than
were done), "done_without_added" (Responses: whole items in
output_item.done alone).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agentwrap.protocols.sse import SseEvent

__all__ = ["Turn", "validate_anthropic", "validate_openai_chat", "validate_openai_responses", "validate_gemini", "VALIDATORS"]


@dataclass
class Turn:
    """What one streamed response amounts to, in neutral terms."""

    text: str = ""
    thinking: str = ""
    tools: list[tuple[str, str, str]] = field(default_factory=list)  # (call id, name, raw arguments/input)
    stop: str | None = None  # the wire's own stop reason or status
    error: str | None = None  # the wire's own error type/code
    usage: dict | None = None
    meta: list[Any] = field(default_factory=list)  # signatures / encrypted content seen


class GrammarError(AssertionError):
    pass


def _check(cond: Any, message: str) -> None:
    if not cond:
        raise GrammarError(message)


def _json(event: SseEvent) -> dict:
    try:
        data = json.loads(event.data)
    except ValueError as exc:
        raise GrammarError(f"data is not JSON: {event.data[:200]!r}") from exc
    _check(isinstance(data, dict), f"data is not an object: {event.data[:200]!r}")
    return data


def _args_ok(raw: str, strict_json: bool) -> None:
    if strict_json:
        value = json.loads(raw or "{}")
        _check(isinstance(value, dict), f"tool arguments are not a JSON object: {raw!r}")


def validate_anthropic(events: list[SseEvent], strict_json: bool = True, tolerate: frozenset = frozenset()) -> Turn:
    turn = Turn()
    _check(events, "empty stream")
    blocks: list[dict] = []
    open_block: dict | None = None
    state = "start"
    for n, event in enumerate(events):
        data = _json(event)
        kind = data.get("type")
        _check(event.event == kind, f"event {n}: `event: {event.event}` but type {kind}")
        if kind == "ping":
            continue
        if kind == "error":
            _check(n == len(events) - 1, "error must be the last event")
            _check(isinstance(data["error"]["type"], str) and isinstance(data["error"]["message"], str), "error needs type and message")
            turn.error = data["error"]["type"]
            return turn
        if state == "start":
            _check(kind == "message_start", f"first event must be message_start, got {kind}")
            message = data["message"]
            for key in ("id", "type", "role", "model", "content", "stop_reason", "usage"):
                _check(key in message, f"message_start.message lacks {key}")
            _check(message["role"] == "assistant" and message["content"] == [], "message_start: role assistant, empty content")
            for key in ("input_tokens", "output_tokens"):
                _check(isinstance(message["usage"].get(key), int), f"message_start usage lacks {key}")
            state = "blocks"
        elif kind == "content_block_start":
            _check(state == "blocks", "content_block_start after message_delta")
            _check(open_block is None, "content_block_start while another block is open")
            _check(data["index"] == len(blocks), f"block index {data['index']} != {len(blocks)}")
            block = data["content_block"]
            _check(block["type"] in ("text", "thinking", "tool_use", "redacted_thinking"), f"unknown block {block['type']}")
            if block["type"] == "tool_use":
                _check(block["id"] and block["name"] and (block["input"] == {} or "tool_input_in_start" in tolerate), "tool_use block needs id, name, empty input")
            open_block = {"type": block["type"], "index": data["index"], "id": block.get("id"), "name": block.get("name"), "parts": []}
            blocks.append(open_block)
        elif kind == "content_block_delta":
            _check(open_block is not None and data["index"] == open_block["index"], "delta for a block that is not open")
            delta = data["delta"]
            expected = {"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "thinking", "input_json_delta": "tool_use"}
            _check(expected.get(delta["type"]) == open_block["type"], f"{delta['type']} in a {open_block['type']} block")
            if delta["type"] == "text_delta":
                turn.text += delta["text"]
            elif delta["type"] == "thinking_delta":
                turn.thinking += delta["thinking"]
            elif delta["type"] == "signature_delta":
                turn.meta.append(delta["signature"])
            else:
                open_block["parts"].append(delta["partial_json"])
        elif kind == "content_block_stop":
            _check(open_block is not None and data["index"] == open_block["index"], "stop for a block that is not open")
            if open_block["type"] == "tool_use":
                raw = "".join(open_block["parts"])
                _args_ok(raw, strict_json)
                turn.tools.append((open_block["id"], open_block["name"], raw))
            open_block = None
        elif kind == "message_delta":
            _check(state == "blocks" and open_block is None, "message_delta with a block open or twice")
            reason = data["delta"]["stop_reason"]
            _check(reason in ("end_turn", "tool_use", "max_tokens", "stop_sequence", "refusal", "pause_turn"), f"bad stop_reason {reason}")
            _check(isinstance(data["usage"]["output_tokens"], int), "message_delta usage needs output_tokens")
            turn.stop, turn.usage = reason, data["usage"]
            state = "delta"
        elif kind == "message_stop":
            _check(state == "delta", "message_stop before message_delta")
            _check(n == len(events) - 1, "message_stop must be last")
            state = "stopped"
        else:
            raise GrammarError(f"unknown event {kind}")
    _check(state == "stopped", "stream ended without message_stop")
    return turn


def validate_openai_chat(events: list[SseEvent], strict_json: bool = True, tolerate: frozenset = frozenset()) -> Turn:
    turn = Turn()
    _check(events, "empty stream")
    calls: dict[int, list] = {}
    first = True
    finished = False
    stream_id = None
    reused = "reused_index" in tolerate
    for n, event in enumerate(events):
        _check(event.event is None, "chat chunks carry no event: line")
        if event.data == "[DONE]":
            _check(n == len(events) - 1, "[DONE] must be last")
            _check(finished, "[DONE] before a finish_reason")
            break
        data = _json(event)
        if "error" in data:
            _check(n == len(events) - 1, "an error must be the last event")
            _check(isinstance(data["error"]["message"], str) and "type" in data["error"], "error needs message and type")
            turn.error = data["error"]["type"]
            return turn
        _check(data["object"] == "chat.completion.chunk", "object must be chat.completion.chunk")
        for key in ("id", "created", "model", "choices"):
            _check(key in data, f"chunk lacks {key}")
        stream_id = stream_id or data["id"]
        _check(data["id"] == stream_id, "chunk ids differ")
        if not data["choices"]:
            _check(finished and "usage" in data, "a chunk without choices is the usage chunk, after finish_reason")
            usage = data["usage"]
            _check(usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"], "usage totals")
            turn.usage = usage
            continue
        _check(not finished, "content after finish_reason")
        choice = data["choices"][0]
        _check(choice["index"] == 0, "choice index 0")
        delta = choice["delta"]
        if first:
            _check(delta.get("role") == "assistant", "first delta carries role assistant")
            first = False
        else:
            _check("role" not in delta or reused, "role only on the first delta")
        turn.text += delta.get("content") or ""
        turn.thinking += delta.get("reasoning_content") or ""
        for call in delta.get("tool_calls") or []:
            index = call["index"]
            if reused and index in calls and call.get("id") and call["id"] != calls[index][0]:
                index = f"{index}/{call['id']}"  # Ollama: another call at the same index
            if index not in calls:
                _check(reused or index == len(calls), f"tool call index {index} skips")
                _check(call.get("id") and call.get("type") == "function" and call["function"].get("name"), "first tool call delta needs id, type, name")
                calls[index] = [call["id"], call["function"]["name"], []]
            else:
                _check("id" not in call and "name" not in call["function"], "id and name only on the first delta")
            calls[index][2].append(call["function"].get("arguments") or "")
        if choice.get("finish_reason") is not None:
            _check(choice["finish_reason"] in ("stop", "tool_calls", "length", "content_filter"), "bad finish_reason")
            turn.stop = choice["finish_reason"]
            finished = True
    else:
        raise GrammarError("stream ended without [DONE] or an error")
    for index in (list(calls) if "reused_index" in tolerate else sorted(calls)):
        call_id, name, parts = calls[index]
        _args_ok("".join(parts), strict_json)
        turn.tools.append((call_id, name, "".join(parts)))
    return turn


_ITEM_DELTAS = {
    "response.output_text.delta": "message",
    "response.reasoning_summary_text.delta": "reasoning",
    "response.function_call_arguments.delta": "function_call",
    "response.custom_tool_call_input.delta": "custom_tool_call",
}


def validate_openai_responses(events: list[SseEvent], strict_json: bool = True, tolerate: frozenset = frozenset()) -> Turn:
    turn = Turn()
    _check(len(events) >= 2, "stream too short")
    seq = -1
    items: list[dict] = []
    done_items: list[dict] = []
    open_item: dict | None = None
    parts: list[str] = []
    for n, event in enumerate(events):
        data = _json(event)
        kind = data["type"]
        _check(event.event == kind, f"event {n}: `event: {event.event}` but type {kind}")
        _check(data["sequence_number"] > seq, "sequence_number must increase")
        seq = data["sequence_number"]
        if n == 0:
            _check(kind == "response.created" and data["response"]["status"] == "in_progress", "first event: response.created")
            continue
        if n == 1 and (kind == "response.in_progress" or "no_in_progress" not in tolerate):
            _check(kind == "response.in_progress", "second event: response.in_progress")
            continue
        where_ok = open_item is not None and data.get("output_index") == open_item["index"]
        if kind == "response.output_item.added":
            _check(open_item is None, "output_item.added while another item is open")
            _check(data["output_index"] == len(items), "output_index must count items")
            item = data["item"]
            _check(item.get("id"), "item needs an id")
            open_item = {"index": data["output_index"], "id": item["id"], "type": item["type"]}
            items.append(open_item)
            parts = []
        elif kind in _ITEM_DELTAS:
            _check(where_ok and data["item_id"] == open_item["id"], f"{kind} for an item that is not open")
            _check(_ITEM_DELTAS[kind] == open_item["type"], f"{kind} in a {open_item['type']} item")
            parts.append(data["delta"])
        elif kind in ("response.content_part.added", "response.content_part.done", "response.reasoning_summary_part.added", "response.reasoning_summary_part.done"):
            _check(where_ok and data["item_id"] == open_item["id"], f"{kind} for an item that is not open")
        elif kind == "response.output_text.done":
            _check(where_ok and data["text"] == "".join(parts), "output_text.done text != deltas")
        elif kind == "response.reasoning_summary_text.done":
            _check(where_ok and data["text"] == "".join(parts), "reasoning_summary_text.done text != deltas")
        elif kind == "response.function_call_arguments.done":
            _check(where_ok and data["arguments"] == "".join(parts), "arguments.done != deltas")
        elif kind == "response.custom_tool_call_input.done":
            _check(where_ok and data["input"] == "".join(parts), "custom input.done != deltas")
        elif kind == "response.output_item.done" and open_item is None and "done_without_added" in tolerate:
            _check(data["output_index"] == len(items), "output_index must count items")
            items.append({"index": data["output_index"], "id": data["item"].get("id"), "type": data["item"]["type"]})
            done_items.append(data["item"])  # a whole item, with no deltas before it
        elif kind == "response.output_item.done":
            _check(where_ok, "output_item.done for an item that is not open")
            item = data["item"]
            _check(item["id"] == open_item["id"] and item["type"] == open_item["type"], "done item differs from added")
            raw = "".join(parts)
            if item["type"] == "message":
                _check(item["content"][0]["text"] == raw and item["status"] == "completed", "message item text != deltas")
                turn.text += raw
            elif item["type"] == "reasoning":
                _check("".join(s["text"] for s in item["summary"]) == raw, "reasoning summary != deltas")
                turn.thinking += raw
                if "encrypted_content" in item:
                    turn.meta.append(item["encrypted_content"])
            elif item["type"] == "function_call":
                _check(item["arguments"] == raw and item["call_id"] and item["name"], "function_call item incomplete")
                _args_ok(raw, strict_json)
                turn.tools.append((item["call_id"], item["name"], raw))
            elif item["type"] == "custom_tool_call":
                _check(item["input"] == raw and item["call_id"] and item["name"], "custom_tool_call item incomplete")
                turn.tools.append((item["call_id"], item["name"], raw))
            done_items.append(item)
            open_item = None
        elif kind in ("response.completed", "response.failed"):
            _check(n == len(events) - 1, f"{kind} must be last")
            response = data["response"]
            for key in ("id", "object", "created_at", "status", "model", "output"):
                _check(key in response, f"response lacks {key}")
            if kind == "response.failed":
                _check(response["status"] == "failed" and response["error"]["code"] and response["error"]["message"], "failed needs error code")
                turn.error = response["error"]["code"]
                return turn
            _check(open_item is None, "response.completed with an item open")
            _check(response["output"] == done_items or "abridged_output" in tolerate, "completed output != done items")
            _check(response["status"] in ("completed", "incomplete"), "bad status")
            if response["status"] == "incomplete":
                _check(response["incomplete_details"]["reason"], "incomplete needs a reason")
            usage = response["usage"]
            _check(usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"], "usage totals")
            turn.stop, turn.usage = response["status"], usage
            return turn
        else:
            raise GrammarError(f"unexpected event {kind}")
    raise GrammarError("stream ended without response.completed or response.failed")


def validate_gemini(events: list[SseEvent], strict_json: bool = True, tolerate: frozenset = frozenset()) -> Turn:
    turn = Turn()
    _check(events, "empty stream")
    for n, event in enumerate(events):
        _check(event.event is None, "gemini chunks carry no event: line")
        data = _json(event)
        if "error" in data:
            _check(n == len(events) - 1, "an error must be the last event")
            error = data["error"]
            _check(isinstance(error["code"], int) and error["message"] and error["status"].isupper(), "error needs code, message, status")
            turn.error = error["status"]
            return turn
        _check(data.get("responseId") and data.get("modelVersion"), "chunk needs responseId and modelVersion")
        candidate = data["candidates"][0]
        content = candidate["content"]
        _check(content["role"] == "model", "content role must be model")
        for part in content["parts"]:
            if "thoughtSignature" in part:
                turn.meta.append(part["thoughtSignature"])
            if "functionCall" in part:
                call = part["functionCall"]
                _check(call["name"] and isinstance(call["args"], dict), "functionCall needs name and object args")
                _check("text" not in part, "functionCall part with text")
                turn.tools.append((call.get("id", ""), call["name"], json.dumps(call["args"])))
            elif part.get("thought"):
                turn.thinking += part["text"]
            else:
                _check(isinstance(part.get("text"), str), f"unknown part {part}")
                _check(part["text"] or "thoughtSignature" in part or "finishReason" in candidate, "empty text part")
                turn.text += part["text"]
        last = n == len(events) - 1
        _check(("finishReason" in candidate) == last, "finishReason on the last chunk only")
        if last:
            _check(candidate["finishReason"] in ("STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER"), "bad finishReason")
            usage = data["usageMetadata"]
            _check(usage["totalTokenCount"] >= usage["promptTokenCount"] + usage["candidatesTokenCount"], "usage totals")
            turn.stop, turn.usage = candidate["finishReason"], usage
    return turn


VALIDATORS = {
    "anthropic_messages": validate_anthropic,
    "openai_chat": validate_openai_chat,
    "openai_responses": validate_openai_responses,
    "gemini": validate_gemini,
}
