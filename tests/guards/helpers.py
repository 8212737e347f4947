"""Helpers for the tool-repair tests: splitting texts, running a filter, reading its output."""

from __future__ import annotations

import json
import random
from typing import Any

from agentwrap.guards.repair import ToolRepair
from agentwrap.protocols.neutral import (
    MessageStart,
    NeutralEvent,
    Stop,
    TextDelta,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from tests.guards.repair_corpus import TOOLS

SPLITS = ("chars", "small", "whole")


def split(text: str, how: str, seed: int = 0) -> list[str]:
    """`text` in 1-character pieces, random 2-9 character pieces, or whole."""
    if not text:
        return []
    if how == "chars":
        return list(text)
    if how == "whole":
        return [text]
    rng = random.Random(seed or len(text))
    out, pos = [], 0
    while pos < len(text):
        size = rng.randint(2, 9)
        out.append(text[pos : pos + size])
        pos += size
    return out


def text_stream(text: str, how: str, stop: str = "end_turn") -> list[NeutralEvent]:
    return [MessageStart("msg_1", "m"), Usage(10, 0), *[TextDelta(p) for p in split(text, how)], Stop(stop), Usage(0, 5)]  # type: ignore[list-item]


def call_stream(name: str, raw: str, how: str, index: int = 0, call_id: str = "call_1") -> list[NeutralEvent]:
    deltas = [ToolCallArgsDelta(index, p) for p in split(raw, how)]
    return [MessageStart("msg_1", "m"), Usage(10, 0), ToolCallStart(index, call_id, name), *deltas, ToolCallEnd(index), Stop("tool_use"), Usage(0, 5)]  # type: ignore[list-item]


def run(events: list[NeutralEvent], filt: ToolRepair | None = None, protocol: str = "anthropic_messages") -> tuple[list[NeutralEvent], ToolRepair]:
    filt = filt or ToolRepair(TOOLS, protocol)
    out: list[NeutralEvent] = []
    for event in events:
        out += filt.feed(event)
    out += filt.finish()
    return out, filt


def outcome(events: list[NeutralEvent]) -> dict[str, Any]:
    """Text, calls (index, id, name, arguments) and stop reason of a neutral stream."""
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    calls: dict[int, list] = {}
    for e in events:
        if isinstance(e, ToolCallStart):
            calls[e.index] = [e.index, e.call_id, e.name, ""]
        elif isinstance(e, ToolCallArgsDelta):
            calls[e.index][3] += e.delta
    stops = [e.reason for e in events if isinstance(e, Stop)]
    return {"text": text, "calls": list(calls.values()), "stop": stops[-1] if stops else None}


def values(calls: list[list]) -> list[tuple[str, Any]]:
    return [(name, json.loads(args)) for _, _, name, args in calls]
