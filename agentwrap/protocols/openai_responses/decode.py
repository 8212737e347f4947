"""OpenAI Responses responses (stream, whole, error) to neutral events.

The stream is typed events keyed by `output_index`. Servers differ in how
much they stream: some (Ollama, LM Studio and gateways, 2025) send items only
in `response.output_item.done`, with no deltas, so an item's full text or
arguments are taken from the done item when no delta came. Reasoning
`encrypted_content` rides out as provider_meta with the item id. Namespaced
calls (`namespace` on the item) get the neutral name "ns__name". Sans-IO.
"""

from __future__ import annotations

import re
from typing import Any

from agentwrap.errors import UpstreamProtocol
from agentwrap.protocols._lenient import as_dict, as_list, as_text, load, require_shape, safe_id, tool_name, truncated, usage
from agentwrap.protocols.neutral.events import (
    MessageStart,
    NeutralEvent,
    Stop,
    TextDelta,
    ThinkingDelta,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
# Responses errors have the Chat shape, so the Chat decode_error serves both.
from agentwrap.protocols.openai_chat.decode import decode_error, error_event
from agentwrap.protocols.openai_responses.request import qualified_name
from agentwrap.protocols.resume import OpenBlock, StreamState
from agentwrap.protocols.sse import SseEvent

__all__ = ["StreamDecoder", "decode_response", "decode_error", "decode_usage", "USAGE_KEYS"]

_INCOMPLETE = {"max_output_tokens": "max_tokens", "content_filter": "refusal"}
# Deltas of an item's text, arguments or input: the closing events repeat them.
_DELTAS = frozenset({"response.output_text.delta", "response.refusal.delta", "response.reasoning_summary_text.delta",
                     "response.reasoning_text.delta", "response.function_call_arguments.delta", "response.custom_tool_call_input.delta"})
_DIGITS = re.compile(rb" ?([0-9]+)")
_TOOL_ITEMS = {"function_call": "function", "custom_tool_call": "custom"}


def decode_usage(raw: Any) -> Usage:
    """Neutral token counts of a Response's `usage` object."""
    raw = as_dict(raw)
    details = as_dict(raw.get("input_tokens_details"))
    return usage(raw.get("input_tokens"), raw.get("output_tokens"), details.get("cached_tokens"), details.get("cache_write_tokens"))


# The JSON keys each Usage field is read from (input, output, cache read, cache write).
USAGE_KEYS = ((b'"input_tokens"',), (b'"output_tokens"',), (b'"cached_tokens"',), (b'"cache_write_tokens"',))


def _item_text(item: dict) -> str:
    return "".join(as_text(c.get("text")) or as_text(c.get("refusal")) for c in as_list(item.get("content")) if isinstance(c, dict))


def _summary(item: dict) -> str:
    texts = [as_text(s.get("text")) for s in as_list(item.get("summary")) if isinstance(s, dict)]
    return "\n\n".join(t for t in texts if t) or "".join(as_text(c.get("text")) for c in as_list(item.get("content")) if isinstance(c, dict))


class _Item:
    __slots__ = ("kind", "tool", "deltas", "summary_index", "done")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.tool = -1  # neutral tool index
        self.deltas = False
        self.summary_index = 0
        self.done = False


class StreamDecoder:
    """Responses SSE events to neutral events; see the module docstring."""

    # The text lane (lane.py): with output_index in the template, item_id is not read.
    lane_volatile = ("sequence_number", "item_id", "obfuscation")
    lane_usage_key: str | None = None  # usage never rides on a text delta
    lane_usage = staticmethod(decode_usage)
    lane_usage_keys = USAGE_KEYS

    @staticmethod
    def lane_locate(data: Any) -> tuple[dict, str] | None:
        """Where an output_text.delta event keeps its text; else None. (The template keeps the
        output_index, whose item already had deltas: the decoder turns it into TextDelta.)"""
        if type(data) is not dict or data.get("type") != "response.output_text.delta" or type(data.get("output_index")) is not int:
            return None
        return (data, "delta") if type(data.get("delta")) is str else None

    def lane_ready(self) -> bool:
        return self._started and not self._done

    def __init__(self, id_hint: str = "", *, observe: bool = False) -> None:
        self._hint = safe_id(id_hint) or "aw"
        self._items: dict[Any, _Item] = {}
        self._tools = 0
        self._started = False
        self._done = False
        self._state = StreamState()
        self._lane_run = b""  # the last lane run observed, if no event observed since
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
            raise UpstreamProtocol(f"Responses stream event is not an object: {event.data[:120]!r}")
        kind = data.get("type", event.event)
        out: list[NeutralEvent] = []
        if not self._started and kind != "error":
            self._started = True
            response = as_dict(data.get("response"))
            out.append(MessageStart(as_text(response.get("id")), as_text(response.get("model"))))
        if kind == "response.output_item.added":
            out += self._added(data.get("output_index"), as_dict(data.get("item")))
        elif kind in ("response.output_text.delta", "response.refusal.delta"):
            self._item(data, "message").deltas = True
            out += [TextDelta(data["delta"])] if as_text(data.get("delta")) else []
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            item = self._item(data, "reasoning")
            index = data.get("summary_index", 0)
            if item.deltas and index != item.summary_index:
                out.append(ThinkingDelta("\n\n"))  # summary parts are paragraphs
            item.summary_index, item.deltas = index, True
            out += [ThinkingDelta(data["delta"])] if as_text(data.get("delta")) else []
        elif kind in ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta"):
            item = self._item(data, "function_call" if "function" in kind else "custom_tool_call")
            if item.tool >= 0 and as_text(data.get("delta")) and not item.done:
                item.deltas = True
                out.append(ToolCallArgsDelta(item.tool, data["delta"]))
        elif kind == "response.output_item.done":
            out += self._item_done(data.get("output_index"), as_dict(data.get("item")))
        elif kind in ("response.completed", "response.incomplete"):
            self._done = True
            response = as_dict(data.get("response"))
            out += self._close_tools()
            out.append(decode_usage(response.get("usage")))
            out.append(Stop(_stop(response, self._tools > 0)))
        elif kind == "response.failed":
            self._done = True
            error = as_dict(as_dict(data.get("response")).get("error"))
            out.append(error_event(error))
        elif kind == "error":
            self._done = True
            out.append(error_event(data.get("error") if isinstance(data.get("error"), dict) else data))
        return out

    def _item(self, data: dict, kind: str) -> _Item:
        key = data.get("output_index")
        key = key if isinstance(key, int) else as_text(data.get("item_id"))
        item = self._items.get(key)
        if item is None:  # a delta before (or without) output_item.added
            item = self._items[key] = _Item(kind)
        return item

    def _added(self, key: Any, raw: dict) -> list[NeutralEvent]:
        if not isinstance(key, int) or key in self._items:
            raise UpstreamProtocol(f"Responses output_item.added with a bad or repeated output_index {key!r}")
        item = self._items[key] = _Item(as_text(raw.get("type")))
        return self._tool_start(item, raw)

    def _tool_start(self, item: _Item, raw: dict) -> list[NeutralEvent]:
        if item.kind not in _TOOL_ITEMS or item.tool >= 0:
            return []
        item.tool = self._tools
        self._tools += 1
        name = qualified_name(tool_name(raw.get("name")), raw.get("namespace"))
        call_id = as_text(raw.get("call_id")) or f"call_{self._hint}_{item.tool}"
        return [ToolCallStart(item.tool, call_id, name, _TOOL_ITEMS[item.kind])]

    def _item_done(self, key: Any, raw: dict) -> list[NeutralEvent]:
        item = self._items.get(key) if isinstance(key, int) else None
        if item is None:  # done without added: the whole item arrives here
            item = _Item(as_text(raw.get("type")))
            self._items[key if isinstance(key, int) else ("done", len(self._items))] = item
        if item.done:
            return []
        item.done = True
        out: list[NeutralEvent] = []
        kind = as_text(raw.get("type")) or item.kind
        if kind == "message" and not item.deltas and _item_text(raw):
            out.append(TextDelta(_item_text(raw)))
        elif kind == "reasoning":
            if not item.deltas and _summary(raw):
                out.append(ThinkingDelta(_summary(raw)))
            if as_text(raw.get("encrypted_content")):
                out.append(ThinkingDelta("", {"encrypted_content": raw["encrypted_content"], "id": as_text(raw.get("id"))}))
        elif kind in _TOOL_ITEMS:
            item.kind = kind
            out += self._tool_start(item, raw)
            full = as_text(raw.get("input" if kind == "custom_tool_call" else "arguments"))
            if not item.deltas and full:
                out.append(ToolCallArgsDelta(item.tool, full))
            out.append(ToolCallEnd(item.tool))
        return out

    def _close_tools(self) -> list[NeutralEvent]:
        out: list[NeutralEvent] = []
        for item in self._items.values():
            if item.tool >= 0 and not item.done:
                item.done = True
                out.append(ToolCallEnd(item.tool))
        return out

    # -- what the agent has received (resume.py) -------------------------------------

    def observe(self, data: Any) -> None:
        """The event whose JSON is `data` (as parsed by `feed`) went to the agent."""
        if type(data) is not dict:
            return
        state = self._state
        seq = data.get("sequence_number")
        if type(seq) is int:
            state.sequence_number = seq
            self._lane_run = b""
        kind = data.get("type")
        block = state.open
        if state.half_started and kind != "response.created":
            state.started, state.half_started = True, False  # whatever follows response.created opens the rest
        if kind in _DELTAS:
            if block is not None and type(data.get("delta")) is str:
                block.parts.append(data["delta"])
        elif kind == "response.output_item.added":
            index, item = data.get("output_index"), as_dict(data.get("item"))
            if type(index) is int:
                state.open = self._opened(index, item)
                state.next_index = max(state.next_index, index + 1)
        elif kind == "response.output_item.done":
            state.done_items.append(as_dict(data.get("item")))
            if block is not None and block.index == data.get("output_index"):
                state.open = None
            if type(data.get("output_index")) is int:
                state.next_index = max(state.next_index, data["output_index"] + 1)
        elif kind in ("response.created", "response.in_progress"):
            response = as_dict(data.get("response"))
            state.half_started = not state.started
            state.response_id, state.model = as_text(response.get("id")), as_text(response.get("model"))
            state.created = response["created_at"] if type(response.get("created_at")) is int else 0
        elif kind in ("response.completed", "response.incomplete", "response.failed", "error"):
            state.ended = True

    def _opened(self, index: int, item: dict) -> OpenBlock:
        kind = as_text(item.get("type"))
        seen = self._items.get(index)
        if kind in _TOOL_ITEMS:
            tool = seen.tool if seen is not None else -1
            if tool >= 0:
                self._state.tools[tool] = index
            namespace = item.get("namespace")
            return OpenBlock(index, "tool", as_text(item.get("id")), as_text(item.get("call_id")), as_text(item.get("name")),
                             _TOOL_ITEMS[kind], tool, meta={"namespace": namespace} if isinstance(namespace, str) and namespace else None)
        what = {"message": "text", "reasoning": "thinking"}.get(kind, "other")
        return OpenBlock(index, what, as_text(item.get("id")), item=item)

    def observe_lane(self, literals: list[bytes], run: bytes, usage: bytes | None = None) -> None:
        """A run of output_text deltas went to the agent undecoded: the open message keeps
        their literals (its closing events repeat the text), and the sequence number is the
        run's last (read from its bytes; a JSON text literal cannot hold this key unescaped)."""
        state = self._state
        if state.open is not None:
            state.open.parts.append(literals[0] if len(literals) == 1 else b",".join(literals))
        self._lane_run = run  # its last sequence number is read if the state is asked for

    def state(self) -> StreamState:
        """What the agent has received, as observed (a copy)."""
        run, self._lane_run = self._lane_run, b""
        at = run.rfind(b'"sequence_number":')
        if at >= 0 and (m := _DIGITS.match(run, at + 18)) is not None:
            self._state.sequence_number = int(m[1])
        return self._state.copy()

    def finish(self) -> list[NeutralEvent]:
        """End of stream: an error unless response.completed/incomplete/failed came."""
        if self._done:
            return []
        self._done = True
        return [truncated("response.completed")]


def _stop(response: dict, tools: bool) -> str:
    if response.get("status") == "incomplete":
        reason = as_text(as_dict(response.get("incomplete_details")).get("reason"))
        return _INCOMPLETE.get(reason, "max_tokens")
    return "tool_use" if tools else "end_turn"


def decode_response(body: Any) -> list[NeutralEvent]:
    """Neutral events of a non-streaming Response (or error) body."""
    body = require_shape(body, "output", "error", "status")
    if "error" in body and body.get("object") != "response":
        return [error_event(body["error"])]
    if body.get("status") == "failed":
        return [error_event(body.get("error"))]
    decoder = StreamDecoder(as_text(body.get("id")))
    events: list[NeutralEvent] = [MessageStart(as_text(body.get("id")), as_text(body.get("model")))]
    decoder._started = True
    for n, item in enumerate(as_list(body.get("output"))):
        events += decoder._item_done(n, as_dict(item))
    events.append(decode_usage(body.get("usage")))
    events.append(Stop(_stop(body, decoder._tools > 0)))
    return events

