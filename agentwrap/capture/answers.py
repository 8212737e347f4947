"""Reassemble a recorded model answer: text, thinking, tool calls, usage, errors.

Sans-IO and lenient: it reads what the four protocols send (SSE streams and
whole JSON bodies) and skips what it does not know; odd or truncated input
gives a partial `Answer`, never an exception. Token counts follow the neutral
convention: `input_tokens` is the whole prompt, cached parts included; each
usage object is read by its protocol's codec (`decode_usage`), so `show` and
the translated stream count tokens the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agentwrap.errors import UpstreamProtocol
from agentwrap.protocols._lenient import as_dict, as_list, as_text
from agentwrap.protocols.codec import MODULES, codec
from agentwrap.protocols.neutral.events import Usage
from agentwrap.protocols.neutral.events import merge_usage as merge_neutral_usage
from agentwrap.protocols.sse import SseParser

__all__ = ["Answer", "AnswerReader", "TOKEN_FIELDS", "merge_usage", "usage_of_body"]

TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
MAX_JSON_BODY_BYTES = 16 * 1024 * 1024  # a non-streamed answer larger than this is not parsed
_RESPONSE_STATES = frozenset(
    {"response.created", "response.in_progress", "response.completed", "response.incomplete", "response.failed"}
)


@dataclass
class Answer:
    text: str = ""
    thinking: str = ""
    tool_calls: list[dict] = field(default_factory=list)  # {"id", "name", "arguments"}
    usage: dict | None = None  # TOKEN_FIELDS -> int
    stop_reason: str | None = None
    model: str | None = None
    errors: list[str] = field(default_factory=list)


def _as_usage(counts: dict) -> Usage:
    return Usage(*(counts.get(k) or 0 for k in TOKEN_FIELDS))


def _counts(usage: Usage) -> dict:
    return dict(zip(TOKEN_FIELDS, (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens)))


def merge_usage(old: dict | None, new: dict | None) -> dict | None:
    """Keep the latest non-zero value of each field (`neutral.merge_usage`, on dicts):
    a stream may report usage in parts."""
    if not new:
        return old
    return _counts(merge_neutral_usage(_as_usage(old) if old else None, _as_usage(new)))


def _usage(protocol: str, u: Any) -> dict | None:
    """The counts of a usage object, read by the protocol's own codec (`decode_usage`)."""
    u = as_dict(u)
    if not u or protocol not in MODULES:
        return None
    return _counts(codec(protocol).decode_usage(u))


class AnswerReader:
    """Feed a response body as recorded (any split); `finish()` gives the `Answer`.

    `usage_only` skips decoding events that cannot carry usage or errors
    (cheap enough for the capture writer to total tokens as it writes).
    """

    def __init__(self, protocol: str | None, *, sse: bool, usage_only: bool = False) -> None:
        self.protocol = protocol
        self.answer = Answer()
        self._usage_only = usage_only
        self._sse = SseParser() if sse else None
        self._body = bytearray()
        self._broken = protocol is None
        self._blocks: dict[Any, dict] = {}  # per-protocol index -> tool call being built

    def feed(self, data: bytes) -> None:
        if self._broken or not data:
            return
        if self._sse is None:
            if len(self._body) + len(data) > MAX_JSON_BODY_BYTES:
                self._broken = True
            else:
                self._body += data
            return
        try:
            events = self._sse.feed(data)
        except UpstreamProtocol:
            self._broken = True
            return
        for ev in events:
            self._event(ev.event, ev.data)

    def finish(self) -> Answer:
        if not self._broken:
            if self._sse is not None:
                try:
                    for ev in self._sse.finish():
                        self._event(ev.event, ev.data)
                except UpstreamProtocol:
                    pass
            elif self._body:
                try:
                    obj = json.loads(self._body)
                except (ValueError, RecursionError):
                    obj = None
                for o in obj if isinstance(obj, list) else [obj]:  # Gemini's non-SSE stream is a JSON array
                    self._whole(o)
        a = self.answer
        a.tool_calls = [c for c in a.tool_calls if c.get("name") or c.get("arguments")]
        return a

    def _event(self, name: str | None, data: str) -> None:
        if self._usage_only and '"usage' not in data and "rror" not in data and "failed" not in data:
            return
        if data == "[DONE]":
            return
        try:
            obj = json.loads(data)
        except (ValueError, RecursionError):
            return
        if isinstance(obj, dict):
            handler = getattr(self, "_ev_" + self.protocol)
            handler(name, obj)

    # -- streamed events, per protocol ---------------------------------------------

    def _ev_anthropic_messages(self, name: str | None, obj: dict) -> None:
        a = self.answer
        kind = obj.get("type") or name
        if kind == "message_start":
            msg = as_dict(obj.get("message"))
            a.model = as_text(msg.get("model")) or a.model
            a.usage = merge_usage(a.usage, _usage(self.protocol, msg.get("usage")))
        elif kind == "content_block_start":
            block = as_dict(obj.get("content_block"))
            if block.get("type") in ("tool_use", "server_tool_use"):
                call = {"id": as_text(block.get("id")), "name": as_text(block.get("name")), "arguments": ""}
                if block.get("input"):
                    call["arguments"] = json.dumps(block["input"], ensure_ascii=False)
                self._blocks[obj.get("index")] = call
                a.tool_calls.append(call)
            elif block.get("type") == "text":
                a.text += as_text(block.get("text"))
        elif kind == "content_block_delta":
            delta = as_dict(obj.get("delta"))
            dt = delta.get("type")
            if dt == "text_delta":
                a.text += as_text(delta.get("text"))
            elif dt == "thinking_delta":
                a.thinking += as_text(delta.get("thinking"))
            elif dt == "input_json_delta" and obj.get("index") in self._blocks:
                call = self._blocks[obj.get("index")]
                call["arguments"] = ("" if call["arguments"] == "{}" else call["arguments"]) + as_text(delta.get("partial_json"))
        elif kind == "message_delta":
            a.stop_reason = as_text(as_dict(obj.get("delta")).get("stop_reason")) or a.stop_reason
            a.usage = merge_usage(a.usage, _usage(self.protocol, obj.get("usage")))
        elif kind == "error":
            a.errors.append(as_text(as_dict(obj.get("error")).get("message")) or json.dumps(obj))

    def _ev_openai_chat(self, name: str | None, obj: dict) -> None:
        a = self.answer
        if "error" in obj:
            err = obj["error"]
            a.errors.append(as_text(as_dict(err).get("message")) or json.dumps(err))
            return
        a.model = as_text(obj.get("model")) or a.model
        a.usage = merge_usage(a.usage, _usage(self.protocol, obj.get("usage")))
        for choice in as_list(obj.get("choices"))[:1]:
            choice = as_dict(choice)
            delta = as_dict(choice.get("delta") or choice.get("message"))
            a.text += as_text(delta.get("content"))
            a.thinking += as_text(delta.get("reasoning_content")) or as_text(delta.get("reasoning"))
            for tc in as_list(delta.get("tool_calls")):
                tc = as_dict(tc)
                fn = as_dict(tc.get("function")) or as_dict(tc.get("custom"))
                idx = tc.get("index", len(self._blocks))
                call = self._blocks.get(idx)
                if call is None:
                    call = self._blocks[idx] = {"id": "", "name": "", "arguments": ""}
                    a.tool_calls.append(call)
                call["id"] = call["id"] or as_text(tc.get("id"))
                call["name"] = call["name"] or as_text(fn.get("name"))
                call["arguments"] += as_text(fn.get("arguments")) or as_text(fn.get("input"))
            a.stop_reason = as_text(choice.get("finish_reason")) or a.stop_reason

    def _ev_openai_responses(self, name: str | None, obj: dict) -> None:
        a = self.answer
        kind = as_text(obj.get("type")) or name or ""
        if kind == "response.output_text.delta":
            a.text += as_text(obj.get("delta"))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            a.thinking += as_text(obj.get("delta"))
        elif kind in ("response.output_item.added", "response.output_item.done"):
            self._responses_item(obj.get("output_index"), as_dict(obj.get("item")), done=kind.endswith("done"))
        elif kind in ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta"):
            call = self._blocks.get(obj.get("output_index"))
            if call is not None:
                call["arguments"] += as_text(obj.get("delta"))
        elif kind in _RESPONSE_STATES:
            resp = as_dict(obj.get("response"))
            a.model = as_text(resp.get("model")) or a.model
            a.usage = merge_usage(a.usage, _usage(self.protocol, resp.get("usage")))
            if kind != "response.created" and resp.get("status"):
                a.stop_reason = as_text(resp.get("status"))
            if resp.get("error"):
                a.errors.append(as_text(as_dict(resp["error"]).get("message")) or json.dumps(resp["error"]))
        elif kind == "error":
            a.errors.append(as_text(obj.get("message")) or as_text(as_dict(obj.get("error")).get("message")) or json.dumps(obj))

    def _responses_item(self, index: Any, item: dict, done: bool) -> None:
        itype = as_text(item.get("type"))
        if not itype.endswith("_call"):
            return
        args = item.get("arguments") if "arguments" in item else item.get("input", item.get("action"))
        args = args if isinstance(args, str) else (json.dumps(args, ensure_ascii=False) if args else "")
        call = self._blocks.get(index)
        if call is None:
            call = self._blocks[index if index is not None else len(self._blocks)] = {"id": "", "name": "", "arguments": ""}
            self.answer.tool_calls.append(call)
        call["id"] = as_text(item.get("call_id")) or as_text(item.get("id")) or call["id"]
        call["name"] = as_text(item.get("name")) or call["name"] or itype
        if done or args:
            call["arguments"] = args or call["arguments"]

    def _ev_gemini(self, name: str | None, obj: dict) -> None:
        a = self.answer
        if isinstance(obj.get("response"), dict):  # Code Assist wraps each chunk
            obj = obj["response"]
        if "error" in obj:
            a.errors.append(as_text(as_dict(obj["error"]).get("message")) or json.dumps(obj["error"]))
            return
        a.model = as_text(obj.get("modelVersion")) or a.model
        a.usage = merge_usage(a.usage, _usage(self.protocol, obj.get("usageMetadata")))
        for cand in as_list(obj.get("candidates"))[:1]:
            cand = as_dict(cand)
            for part in as_list(as_dict(cand.get("content")).get("parts")):
                part = as_dict(part)
                if "text" in part:
                    if part.get("thought"):
                        a.thinking += as_text(part["text"])
                    else:
                        a.text += as_text(part["text"])
                if isinstance(part.get("functionCall"), dict):
                    fc = part["functionCall"]
                    a.tool_calls.append({"id": as_text(fc.get("id")), "name": as_text(fc.get("name")),
                                         "arguments": json.dumps(fc.get("args", {}), ensure_ascii=False)})
            a.stop_reason = as_text(cand.get("finishReason")) or a.stop_reason

    # -- whole JSON bodies ---------------------------------------------------------

    def _whole(self, obj: Any) -> None:
        if not isinstance(obj, dict):
            return
        a = self.answer
        p = self.protocol
        if p == "anthropic_messages":
            if obj.get("type") == "error":
                self._ev_anthropic_messages("error", obj)
                return
            a.model = as_text(obj.get("model")) or a.model
            for i, block in enumerate(as_list(obj.get("content"))):
                block = as_dict(block)
                start = {"type": "content_block_start", "index": i, "content_block": block}
                self._ev_anthropic_messages("content_block_start", start)
                if block.get("type") == "thinking":
                    a.thinking += as_text(block.get("thinking"))
            a.stop_reason = as_text(obj.get("stop_reason")) or a.stop_reason
            a.usage = merge_usage(a.usage, _usage(p, obj.get("usage")))
        elif p == "openai_responses":
            if "error" in obj and obj.get("object") != "response":
                self._ev_openai_responses("error", {"type": "error", "error": obj["error"]})
                return
            for i, item in enumerate(as_list(obj.get("output"))):
                item = as_dict(item)
                if item.get("type") == "message":
                    a.text += "".join(as_text(as_dict(c).get("text")) for c in as_list(item.get("content")))
                elif item.get("type") == "reasoning":
                    a.thinking += "".join(as_text(as_dict(c).get("text")) for c in as_list(item.get("summary")))
                else:
                    self._responses_item(i, item, done=True)
            self._ev_openai_responses("response.completed", {"type": "response.completed", "response": obj})
        else:
            handler = getattr(self, "_ev_" + p)
            handler(None, obj)


def usage_of_body(protocol: str | None, body: bytes, *, sse: bool) -> dict | None:
    """Token usage of a whole response body, cheaply.

    For SSE only the `data:` lines that mention usage are decoded (every protocol
    reports usage on such a line), found with bytes searches rather than a full
    parse, so the capture writer can total tokens at little cost.
    """
    if protocol is None:
        return None
    if not sse:
        # A whole answer carries its usage at the top (`usageMetadata` for Gemini): read
        # straight from there when it is; anything else (an envelope, an error) by the reader.
        obj = None
        if len(body) <= MAX_JSON_BODY_BYTES:
            try:
                obj = json.loads(body)
            except (ValueError, RecursionError):
                return None
        if isinstance(obj, dict) and protocol in MODULES:
            found = _usage(protocol, obj.get("usageMetadata" if protocol == "gemini" else "usage"))
            if found is not None:
                return merge_usage(None, found)
        reader = AnswerReader(protocol, sse=False)
        reader.feed(body)
        return reader.finish().usage
    reader = AnswerReader(protocol, sse=False)
    # Usage merges as "the latest non-zero value of each field" (Gemini reports the usage
    # so far on every chunk), so the lines mentioning usage are read from the last one back,
    # until every field has a value or no earlier line can give it one (none of the keys it
    # is read from occurs before).
    found: dict[str, int] = {}
    seen = False  # a line with usage, if all zero
    needles = dict(zip(TOKEN_FIELDS, codec(protocol).USAGE_KEYS)) if protocol in MODULES else {}
    pos = body.rfind(b'"usage')
    while pos >= 0:
        start = body.rfind(b"\n", 0, pos) + 1
        end = body.find(b"\n", pos)
        line = AnswerReader(protocol, sse=False)
        _usage_line(line, body, start, len(body) if end < 0 else end)
        usage = line.answer.usage
        if usage is not None:
            seen = True
            for k, v in usage.items():
                if v and k not in found:
                    found[k] = v
            if all(k in found or not any(body.rfind(n, 0, start) >= 0 for n in needles.get(k, ())) for k in TOKEN_FIELDS):
                break
        pos = body.rfind(b'"usage', 0, start)
    if found:
        return merge_usage(None, found)
    return dict.fromkeys(TOKEN_FIELDS, 0) if seen else None


def _usage_line(reader: AnswerReader, body: bytes, start: int, end: int) -> None:
    line = body[start:end].rstrip(b"\r")
    if line.startswith(b"data:"):
        reader._event(None, line[5:].strip().decode("utf-8", "replace"))
