"""What a stream has sent so far, so that an encoder can continue it.

A pass-through stream (protocols/tap.py) forwards the upstream's own bytes;
when a guard must change or end it, the rest is written by the protocol's
`StreamEncoder`, which must then continue the stream the agent already has
instead of starting a new one: no second message start, the next block at the
next wire index, the same response and item ids, the next sequence number,
and closing events that match what was opened.

Each codec's `StreamDecoder` keeps a `StreamState` of the events it was told
went out (`observe(data)` with an event's parsed JSON, `observe_lane(...)`
for a run of text events the lane forwarded undecoded); `state()` returns a
copy, and `StreamEncoder.resume(state)` is the encoder of the rest. The
fields are wire facts in neutral terms; a codec leaves those it has no use
for at their defaults.

Sans-IO.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from agentwrap.protocols.neutral.events import Usage

__all__ = ["OpenBlock", "StreamState"]


@dataclass(slots=True)
class OpenBlock:
    """The block (Anthropic) or output item (Responses) the agent has open.

    `kind` is "text", "thinking", "tool" or "other" (one the neutral model
    does not carry: a server-tool block, a web-search item). `parts` is what
    it has streamed so far, where the closing events repeat it (Responses):
    strings, and runs of JSON string literals the lane forwarded (bytes,
    comma-separated, decoded only if read). `item` is a Responses item as
    added (an "other" item is closed as it came).
    """

    index: int
    kind: str
    item_id: str = ""
    call_id: str = ""
    name: str = ""
    tool_kind: str = "function"
    tool_index: int = -1  # the neutral index the decoder gave the call
    parts: list = field(default_factory=list)
    meta: Any = None  # Responses: {"namespace": ...} of a namespaced call
    item: dict | None = None


@dataclass(slots=True)
class StreamState:
    """Wire facts of the part of a stream the agent has received; see the module docstring.

    - `response_id`, `model`, `created`: the stream's own (Chat repeats them on
      every chunk, Gemini on every chunk, Responses in every Response object);
    - `started`: the protocol's opening went out (Anthropic message_start,
      Responses response.created and response.in_progress, Chat's first
      chunk); `half_started`: Responses, response.created went out alone;
    - `open`: the open block or item, `next_index` the wire index the next one takes;
    - `tools`: neutral tool index -> wire index of every call sent (Chat: the
      `tool_calls` index; Anthropic, Responses: the block or output index);
      `next_tool` the wire index of the next Chat call;
    - `stop`: the neutral stop reason already on the wire (Anthropic
      message_delta, Chat finish_reason), else None;
    - `ended`: the stream's last event went out (message_stop, [DONE],
      response.completed, a Gemini finishReason, or an error event);
    - `sequence_number`: Responses, the last one sent;
    - `done_items`: Responses, each output_item.done item sent (response.completed lists them);
    - `usage`: the token counts reported so far;
    - `wrap`: Gemini, the key each chunk's object is wrapped in (Code Assist: "response").
    """

    response_id: str = ""
    model: str = ""
    created: int = 0
    started: bool = False
    half_started: bool = False
    open: OpenBlock | None = None
    next_index: int = 0
    tools: dict[int, int] = field(default_factory=dict)
    next_tool: int = 0
    stop: str | None = None
    ended: bool = False
    sequence_number: int = -1
    done_items: list[dict] = field(default_factory=list)
    usage: Usage | None = None
    wrap: str | None = None

    def copy(self) -> StreamState:
        """A copy whose lists and open block the original's later changes do not reach."""
        block = self.open
        if block is not None:
            block = replace(block, parts=list(block.parts))
        return replace(self, open=block, tools=dict(self.tools), done_items=list(self.done_items))

