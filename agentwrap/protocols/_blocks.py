"""Shared machinery of the four encoders: block sequencing, compact JSON.

Theory of operation: neutral events may interleave tool calls (an OpenAI Chat
upstream addresses calls by index and ends none of them before the stream
ends), but Anthropic blocks and Responses items stream one at a time.
`BlockSequencer` turns the neutral stream into strictly sequential blocks:

- text and thinking deltas extend the open block of their kind, else close it
  and open a new one; a thinking block that got its provider_meta (a
  signature) is sealed, so the next thinking delta opens a new block;
- a tool call starting while another is open is queued with its arguments
  and replayed, in order, when the open one ends;
- text or thinking, Stop and finish() end every open or queued tool call;
  argument deltas for a call already ended are dropped (no wire can carry
  them any more);
- after Stop only Usage and StreamError count: content then is a decoder bug,
  and the terminal events (sent by finish() so late Usage is included) would
  otherwise follow content the agent already saw end.

Subclasses implement the `_on_*` hooks and append wire bytes to `self._out`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from agentwrap.protocols.neutral.events import NeutralEvent, Usage, merge_usage

if TYPE_CHECKING:
    from agentwrap.protocols.resume import StreamState

__all__ = ["Block", "BlockSequencer", "Collector", "dumps", "parse_args"]

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(obj: Any) -> str:
    """Compact JSON with raw UTF-8, as the providers send it."""
    return _encoder.encode(obj)


def parse_args(text: str) -> dict:
    """Parse accumulated tool arguments into an object for wires without deltas.

    Invalid or non-object JSON is kept as `{"_raw": text}` rather than dropped,
    so the agent sees what the model produced and can complain about it.
    """
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"_raw": text}
    return value if isinstance(value, dict) else {"_raw": text}


class Block:
    """One wire block/item being streamed: text, thinking or a tool call."""

    __slots__ = ("kind", "index", "tool_index", "call_id", "name", "tool_kind", "parts", "meta", "sealed", "ended", "item_id")

    def __init__(self, kind: str, tool_index: int = -1, call_id: str = "", name: str = "", tool_kind: str = "function", meta: Any = None) -> None:
        self.kind = kind  # "text" | "thinking" | "tool"; resumed: "other" (meta: a Responses item), "prior"
        self.index = -1  # position on the wire, set when opened
        self.tool_index = tool_index
        self.call_id = call_id
        self.name = name
        self.tool_kind = tool_kind
        self.parts: list[str] = []
        self.meta = meta
        self.sealed = False
        self.ended = False
        self.item_id = ""

    @property
    def text(self) -> str:
        parts = self.parts
        if any(type(p) is bytes for p in parts):
            # Text the lane took: JSON string literals, comma-separated, decoded when read,
            # each run of them in one json.loads.
            out: list[str] = []
            run: list[bytes] = []
            for p in parts:
                if type(p) is bytes:
                    run.append(p)
                    continue
                if run:
                    out += json.loads(b"[" + b",".join(run) + b"]")
                    run = []
                out.append(p)
            if run:
                out += json.loads(b"[" + b",".join(run) + b"]")
            parts = out
        return "".join(parts)


_PRIOR = Block("prior")  # a wire index taken before a resumed encoder took over


class BlockSequencer:
    """Base of the sequential-block encoders; see the module docstring."""

    eager_start = True  # emit the protocol's start event on MessageStart

    def __init__(self) -> None:
        self._out: list[bytes] = []
        self._blocks: list[Block] = []  # every block opened, in wire order
        self._current: Block | None = None
        self._queue: list[Block] = []
        self._tools: dict[int, Block] = {}
        self._started = False
        self._done = False
        self._stop: str | None = None
        self._stop_sent = False  # resumed after the stream's stop went out (Anthropic message_delta)
        self._usage: Usage | None = None

    @classmethod
    def resume(cls, state: StreamState, *, include_usage: bool = True) -> Any:
        """The encoder of the rest of the stream `state` describes (resume.py): no second
        opening, the next block at the next wire index, the open block closed when it ends,
        and the protocol's proper ending from `finish()`."""
        encoder = cls(state.model, state.response_id, created=state.created, include_usage=include_usage)  # type: ignore[call-arg]
        encoder._resume(state)
        return encoder

    def _resume(self, state: StreamState) -> None:
        self._started = state.started
        self._blocks = [_PRIOR] * state.next_index
        for tool_index in state.tools:
            done = Block("tool", tool_index)
            done.ended = True  # late argument deltas for it are dropped: the agent has it whole
            self._tools[tool_index] = done
        opened = state.open
        if opened is not None:
            block = Block(opened.kind, opened.tool_index, opened.call_id, opened.name, opened.tool_kind,
                          opened.item if opened.kind == "other" else opened.meta)
            block.index, block.item_id, block.parts = opened.index, opened.item_id, list(opened.parts)
            while len(self._blocks) <= opened.index:
                self._blocks.append(_PRIOR)
            self._blocks[opened.index] = block
            self._current = block
            if block.kind == "tool" and block.tool_index >= 0:
                self._tools[block.tool_index] = block
        self._stop = state.stop
        self._stop_sent = state.stop is not None
        self._usage = state.usage
        self._done = state.ended

    # -- the stage interface -------------------------------------------------

    def feed(self, event: NeutralEvent) -> bytes:
        if self._done:
            return b""
        kind = event.kind
        if self._stop is not None and kind not in ("usage", "stream_error"):
            return b""
        if kind == "text_delta":
            if event.text:
                self._content("text").parts.append(event.text)
                self._on_delta(self._current, event.text)
        elif kind == "thinking_delta":
            if event.text or event.provider_meta is not None:
                block = self._content("thinking")
                if event.text:
                    block.parts.append(event.text)
                    self._on_delta(block, event.text)
                if event.provider_meta is not None:
                    block.meta = event.provider_meta
                    block.sealed = True
                    self._on_meta(block, event.provider_meta)
        elif kind == "tool_call_start":
            self._tool_start(event)
        elif kind == "tool_call_args_delta":
            block = self._tools.get(event.index)
            if block is not None and not block.ended and event.delta:
                block.parts.append(event.delta)
                if block is self._current:
                    self._on_delta(block, event.delta)
        elif kind == "tool_call_end":
            block = self._tools.get(event.index)
            if block is not None and not block.ended:
                block.ended = True
                if block is self._current:
                    self._close()
                    self._drain()
        elif kind == "usage":
            self._usage = merge_usage(self._usage, event)
        elif kind == "stop":
            self._close_all()
            self._stop = event.reason
        elif kind == "stream_error":
            self._done = True
            self._on_error(event)
        elif kind == "message_start":
            if self.eager_start:
                self._start()
        return self._flush()

    def text_run(self, literals: list[bytes], joined: bytes) -> bytes | None:
        """The text lane (lane.py): the bytes of `TextDelta(t)` for each text, built from its
        JSON string literal, when the open block takes text; None when the general path must.
        `joined` is the literals comma-separated: the block keeps it as its text, decoded
        when read (`Block.text`)."""
        block = self._current
        if self._done or self._stop is not None or block is None or block.kind != "text" or block.sealed:
            return None
        run = self._text_run(block, literals)
        if run is not None:
            block.parts.append(joined)
        return run

    def finish(self) -> bytes:
        """Close what is open and emit the terminal events, once."""
        if self._done:
            return b""
        self._close_all()
        self._start()
        self._done = True
        self._on_finish(self.stop_reason(), self._usage or Usage())
        return self._flush()

    # -- helpers for subclasses ----------------------------------------------

    def stop_reason(self) -> str:
        """The stop reason to report; tool calls imply "tool_use".

        Some OpenAI-compatible servers end tool-call turns with finish_reason
        "stop", and agents decide whether to run tools from the stop reason.
        """
        has_tools = bool(self._tools)
        if self._stop is None or self._stop == "error":
            return "tool_use" if has_tools else "end_turn"
        if self._stop == "end_turn" and has_tools:
            return "tool_use"
        return self._stop

    def _flush(self) -> bytes:
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._on_start()

    def _open(self, block: Block) -> None:
        self._start()
        block.index = len(self._blocks)
        self._blocks.append(block)
        self._current = block
        self._on_open(block)

    def _close(self) -> None:
        block = self._current
        if block is not None:
            self._current = None
            block.ended = True
            self._on_close(block)

    def _content(self, kind: str) -> Block:
        current = self._current
        if current is not None and current.kind == kind and not current.sealed:
            return current
        self._close_all()
        block = Block(kind)
        self._open(block)
        return block

    def _tool_start(self, event: Any) -> None:
        if event.index in self._tools:
            return  # a repeated start would open a second call with the same index
        block = Block("tool", event.index, event.call_id, event.name, event.tool_kind, event.provider_meta)
        self._tools[event.index] = block
        current = self._current
        if current is not None and current.kind == "tool":
            self._queue.append(block)
            return
        self._close()
        self._open(block)

    def _drain(self) -> None:
        """Replay queued tool calls while each one has already ended."""
        while self._current is None and self._queue:
            block = self._queue.pop(0)
            ended = block.ended
            self._open(block)
            if block.parts:
                self._on_delta(block, "".join(block.parts))
            if ended:
                self._close()

    def _close_all(self) -> None:
        for block in self._queue:
            block.ended = True
        self._close()
        self._drain()

    # -- hooks -----------------------------------------------------------------

    def _text_run(self, block: Block, literals: list[bytes]) -> bytes | None:
        return None  # no lane: every text delta takes the general path

    def _on_start(self) -> None: ...

    def _on_open(self, block: Block) -> None: ...

    def _on_delta(self, block: Block, text: str) -> None: ...

    def _on_meta(self, block: Block, meta: Any) -> None: ...

    def _on_close(self, block: Block) -> None: ...

    def _on_error(self, error: Any) -> None: ...

    def _on_finish(self, reason: str, usage: Usage) -> None: ...


class Collector(BlockSequencer):
    """Fold a whole event list into blocks, for the non-streaming encoders."""

    def __init__(self, events: Any) -> None:
        super().__init__()
        self.error: Any = None
        self.reason = "end_turn"
        self.usage = Usage()
        for event in events:
            self.feed(event)
        self.finish()

    @property
    def blocks(self) -> list[Block]:
        return self._blocks

    def _on_error(self, error: Any) -> None:
        self.error = error

    def _on_finish(self, reason: str, usage: Usage) -> None:
        self.reason = reason
        self.usage = usage
