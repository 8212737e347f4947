"""Helpers for the pipeline tests: streams (recorded and generated), test filters, runners."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from agentwrap.guards.base import Cut, GuardNote
from agentwrap.protocols import PROTOCOLS
from agentwrap.protocols.codec import codec
from agentwrap.protocols.neutral import (
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
from agentwrap.protocols.sse import SseEvent, SseParser
from agentwrap.protocols.tap import StreamTap
from tests.support.grammar import VALIDATORS, Turn

STREAMS = Path(__file__).resolve().parents[1] / "fixtures" / "streams"
NOTICE = "\n\n[cut by a test filter]"

# Recorded upstreams that deviate from tests/support/grammar.py's strict grammar in ways a
# pass-through stream keeps (see the `tolerate` names in tests/support/grammar.py).
TOLERATE: dict[str, frozenset] = {
    "anthropic_messages/tool_input_in_block_start": frozenset({"tool_input_in_start"}),
    "openai_chat/parallel_calls_same_index": frozenset({"reused_index"}),
    "openai_responses/custom_tool_call_input_deltas": frozenset({"no_in_progress", "abridged_output"}),
    "openai_responses/incomplete_max_output_tokens": frozenset({"no_in_progress", "abridged_output"}),
    "openai_responses/namespaced_function_call": frozenset({"no_in_progress", "abridged_output"}),
    "openai_responses/no_completed_event": frozenset({"no_in_progress", "abridged_output"}),
    "openai_responses/output_item_done_carries_full_item": frozenset({"no_in_progress", "abridged_output", "done_without_added"}),
    "openai_responses/reasoning_summary_and_encrypted_content": frozenset({"abridged_output"}),
    "openai_responses/response_failed_rate_limit": frozenset({"no_in_progress"}),
}
# Single-event answers whose only event is outside the strict grammar (a Gemini
# MALFORMED_FUNCTION_CALL finish without parts, a blocked prompt): valid only when cut.
RAW_INVALID = {"gemini/malformed_function_call", "gemini/prompt_blocked"}

TOOLS_WANTED = ("Bash", "Read")


def fixtures() -> list[tuple[str, str, bytes]]:
    """(protocol, "protocol/quirk", bytes) of every recorded stream."""
    return [(p.parent.name, f"{p.parent.name}/{p.stem}", p.read_bytes()) for p in sorted(STREAMS.glob("*/*.sse"))]


META = {"signature": "c2ln", "thought_signature": "c2ln", "encrypted_content": "gAAAA-enc"}


def generated_events() -> dict[str, list[NeutralEvent]]:
    """Neutral answers the encoders turn into upstream streams for the tests."""
    words = [f"w{i} é\"\\\n{chr(0x1F600)} " if i % 7 == 0 else f"w{i} " for i in range(40)]
    return {
        "text": [MessageStart("up_1", "m"), Usage(10, 0), *(TextDelta(w) for w in words), Stop("end_turn"), Usage(0, 40)],
        "thinking_text_tool": [
            MessageStart("up_2", "m"), Usage(20, 0), ThinkingDelta("let me "), ThinkingDelta("see"), ThinkingDelta("", META),
            TextDelta("Running `ls` "), TextDelta("now."), ToolCallStart(0, "call_a", "Bash"),
            ToolCallArgsDelta(0, '{"command":'), ToolCallArgsDelta(0, ' "ls -la"}'), ToolCallEnd(0),
            Stop("tool_use"), Usage(0, 9),
        ],
        "two_calls": [
            MessageStart("up_3", "m"), Usage(5, 0), TextDelta("Reading both."), ToolCallStart(0, "call_b", "Read"),
            ToolCallArgsDelta(0, '{"file_path":"a.py"}'), ToolCallEnd(0), ToolCallStart(1, "call_c", "Read"),
            ToolCallArgsDelta(1, '{"file_path":'), ToolCallArgsDelta(1, '"b.py"}'), ToolCallEnd(1), Stop("tool_use"), Usage(0, 12),
        ],
    }


def encode(protocol: str, events: list[NeutralEvent], response_id: str = "up1") -> bytes:
    encoder = codec(protocol).StreamEncoder("upstream-model", ("resp_" if protocol == "openai_responses" else "") + response_id, created=7)
    return b"".join(encoder.feed(e) for e in events) + encoder.finish()


def streams(protocol: str) -> list[tuple[str, bytes]]:
    """(name, bytes): the protocol's recorded streams and encoder-made ones."""
    out = [(name, data) for p, name, data in fixtures() if p == protocol]
    out += [(f"{protocol}/generated_{name}", encode(protocol, events)) for name, events in generated_events().items()]
    return out


def parse(data: bytes) -> list[SseEvent]:
    parser = SseParser()
    return parser.feed(data) + parser.finish()


def validate(protocol: str, data: bytes, name: str = "", strict_json: bool = False) -> Turn:
    return VALIDATORS[protocol](parse(data), strict_json=strict_json, tolerate=TOLERATE.get(name, frozenset()))


def splits(data: bytes, rng: random.Random, n: int) -> list[int]:
    return sorted({rng.randrange(1, len(data)) for _ in range(n)}) if len(data) > 1 else []


def event_cuts(data: bytes) -> list[int]:
    """The positions after each blank line: one event per read."""
    sep = b"\r\n\r\n" if b"\r\n" in data else b"\n\n"
    out, at = [], data.find(sep)
    while at >= 0:
        out.append(at + len(sep))
        at = data.find(sep, at + len(sep))
    return [c for c in out if c < len(data)]


def run_tap(protocol: str, data: bytes, cuts: list[int], filters: list[Any], **kw: Any) -> tuple[bytes, StreamTap]:
    tap = StreamTap(protocol, filters, **kw)
    out, begin = [], 0
    for cut in [*cuts, len(data)]:
        out.append(tap.feed(data[begin:cut]))
        begin = cut
        if tap.done:
            break
    out.append(tap.finish())
    return b"".join(out), tap


# -- test filters --------------------------------------------------------------------------


class NoOp:
    """Passes everything; takes every lane run."""

    name = "noop"
    wants_text = True

    def __init__(self) -> None:
        self.notes: list[GuardNote] = []

    def feed(self, event: NeutralEvent) -> list[NeutralEvent]:
        return [event]

    def lane_text(self, literals: list[bytes]) -> bool:
        return True

    def finish(self) -> list[NeutralEvent]:
        return []


class CutAt(NoOp):
    """Cuts on the k-th event it is fed (0-based); declines lane runs, so it sees every text delta."""

    name = "cut_at"

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.seen = 0

    def feed(self, event: NeutralEvent) -> list[NeutralEvent]:
        if self.seen == self.k:
            self.notes.append(GuardNote(self.name, "cut", {"at": self.k}))
            raise Cut(f"test cut at {self.k}", events=[TextDelta(NOTICE)])
        self.seen += 1
        return [event]

    def lane_text(self, literals: list[bytes]) -> bool:
        return False


class HoldAll(NoOp):
    """Holds every event until the stream's end (or `release_at` events), then releases them as they came."""

    name = "hold_all"

    def __init__(self, release_at: int = -1) -> None:
        super().__init__()
        self.held: list[NeutralEvent] = []
        self.release_at = release_at

    @property
    def holding(self) -> bool:
        return bool(self.held)

    def feed(self, event: NeutralEvent) -> list[NeutralEvent]:
        self.held.append(event)
        if len(self.held) == self.release_at:
            return self.finish()
        return []

    def lane_text(self, literals: list[bytes]) -> bool:
        return False

    def finish(self) -> list[NeutralEvent]:
        out, self.held = self.held, []
        return out


class Rename(NoOp):
    """Holds each tool call until its end and releases it renamed (`old` -> `new`)."""

    name = "rename"

    def __init__(self, old: str, new: str) -> None:
        super().__init__()
        self.old, self.new = old, new
        self.calls: dict[int, list[NeutralEvent]] = {}
        self.queue: list[NeutralEvent] = []

    @property
    def holding(self) -> bool:
        return bool(self.calls)

    def feed(self, event: NeutralEvent) -> list[NeutralEvent]:
        if isinstance(event, ToolCallStart):
            if event.name == self.old:
                event = ToolCallStart(event.index, event.call_id, self.new, event.tool_kind, provider_meta=event.provider_meta)
                self.notes.append(GuardNote(self.name, "renamed", {"from": self.old, "to": self.new}))
            self.calls[event.index] = [event]
            return []
        if isinstance(event, (ToolCallArgsDelta, ToolCallEnd)) and event.index in self.calls:
            self.calls[event.index].append(event)
            if isinstance(event, ToolCallEnd):
                return self.calls.pop(event.index)
            return []
        if self.calls:
            first = next(iter(self.calls.values()))
            first.append(event)  # keep the order: after the held call
            return []
        return [event]

    def finish(self) -> list[NeutralEvent]:
        out = [e for call in self.calls.values() for e in call]
        self.calls = {}
        return out


class Boom(NoOp):
    """Raises (a bug) on the k-th event it is fed."""

    name = "boom"

    def __init__(self, k: int = 0, where: str = "feed") -> None:
        super().__init__()
        self.k, self.where, self.seen = k, where, 0

    def feed(self, event: NeutralEvent) -> list[NeutralEvent]:
        if self.where == "feed" and self.seen == self.k:
            raise ValueError("boom")
        self.seen += 1
        return [event]

    def lane_text(self, literals: list[bytes]) -> bool:
        if self.where == "lane_text":
            raise RuntimeError("boom in the lane")
        return True


__all__ = ["PROTOCOLS", "NOTICE", "TOLERATE", "RAW_INVALID", "fixtures", "generated_events", "encode", "streams", "parse",
           "validate", "splits", "event_cuts", "run_tap", "NoOp", "CutAt", "HoldAll", "Rename", "Boom"]
