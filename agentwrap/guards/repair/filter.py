"""`ToolRepair`: the stream filter that hands the agent tool calls it can execute.

Theory of operation. Events go into one ordered queue of slots; a slot is
released when it is decided, and only from the front, so the agent sees
events in the order they came, whatever is held:

- a function call's `ToolCallStart` and argument deltas are held until its
  `ToolCallEnd`, then judged against the declared tools (names.py,
  arguments.py). A valid call releases exactly the held events; a
  repairable one becomes `ToolCallStart(fixed name)`, one
  `ToolCallArgsDelta(repaired JSON)`, `ToolCallEnd` (same index, id,
  tool kind and provider_meta), with a `GuardNote(action="repaired")`; an
  unrepairable one is released unchanged with a note, action "failed".
  Freeform (custom) calls pass untouched. A call whose arguments outgrow
  `MAX_ARGS_CHARS` is released as it is and passes from then on;
- text deltas go through the embedded-call scanner (embedded.py). A delta
  whose text is all decided as text is released as the same event, so text
  without an extracted call comes out identical, however it was split; a
  delta that an extracted call cuts is released as its text pieces and the
  call's events. An extracted call gets a fresh id (`wire_call_id` for the
  agent's protocol) and an index above every index seen; a later call of
  the upstream's at an index taken this way is moved above it too. The
  message's `Stop` becomes "tool_use" (from "end_turn" or "stop_sequence")
  when a text call became a real one, with a note;
- the message's text ends at `Stop`, at a real tool call, and at the end of
  the stream: the scanner decides what it holds then.

A request that declared no function tools needs no such filter: the
integrator should not create one (made anyway, it passes everything and
asks for no text). With `extract_text_calls=False` it asks for no text
(`wants_text` False).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Any

from agentwrap.guards.base import GuardNote
from agentwrap.guards.repair.arguments import repair_arguments as _repair_arguments
from agentwrap.guards.repair.embedded import MAX_BLOCK_CHARS, MAX_HOLD_CHARS, TRIGGER, EmbeddedScanner, Extracted
from agentwrap.guards.repair.toolbox import Toolbox
from agentwrap.guards.repair.names import NameResolver
from agentwrap.guards.repair.textlane import LANE_GATE, take
from agentwrap.protocols.neutral import NeutralEvent, Stop, TextDelta, ToolCallArgsDelta, ToolCallEnd, ToolCallStart
from agentwrap.protocols.neutral.request import wire_call_id
from agentwrap.protocols.neutral.summary import ToolSpec

__all__ = ["ToolRepair", "MAX_ARGS_CHARS"]

MAX_ARGS_CHARS = 4 * 1024 * 1024  # a call's arguments held for judging, at most
_ID_PREFIX = {"anthropic_messages": "toolu_", "gemini": "call_"}
_TO_TOOL_USE = ("end_turn", "stop_sequence")
_EMPTY_OK = ("anthropic_messages", "gemini")  # agents that read empty arguments as {}


class _Slot:
    """One place in the output order: `out` is what goes there, None while undecided."""

    __slots__ = ("out", "event", "used", "parts", "cut")

    def __init__(self, event: Any, out: list | None) -> None:
        self.out = out
        self.event = event
        self.used = 0  # text slots: characters decided so far
        self.parts: list[Any] = []  # text slots: text pieces (str) and events
        self.cut = False  # text slots: a call took part of the text


class _Held:
    """A function call held until its end."""

    __slots__ = ("start", "index", "deltas", "slots", "size")

    def __init__(self, start: ToolCallStart, slot: _Slot) -> None:
        self.start = start
        self.index = start.index
        self.deltas: list[str] = []
        self.slots = [slot]
        self.size = 0


class ToolRepair:
    """The tool-call repair guard; see the module docstring."""

    name = "tool_repair"
    wants_text = True
    lane_gate = LANE_GATE  # text a call could start at: the chain hands such runs over at once

    def __init__(
        self,
        tools: tuple[ToolSpec, ...],
        agent_protocol: str,
        *,
        repair_arguments: bool = True,
        repair_names: bool = True,
        extract_text_calls: bool = True,
        max_hold_chars: int = MAX_HOLD_CHARS,
        max_block_chars: int = MAX_BLOCK_CHARS,
        id_seed: str = "",
    ) -> None:
        """`tools`: what the agent's request declared. `agent_protocol`: the protocol the
        agent speaks (ids of extracted calls fit it; whether it reads empty arguments as
        {}). `id_seed`: something unique to this request (the translator's id hint, the
        flow id), so extracted calls' ids differ across turns even when a backend sends
        the same message id every time."""
        self.notes: list[GuardNote] = []
        self.agent_protocol = agent_protocol
        self._specs = {t.name: t for t in tools}
        self._resolver = NameResolver(self._specs)
        self._repair_args = repair_arguments
        self._repair_names = repair_names
        self._empty_ok = agent_protocol in _EMPTY_OK
        box = Toolbox(tools)
        self._inert = not box.names
        self._scanner = EmbeddedScanner(box, max_hold_chars=max_hold_chars, max_block_chars=max_block_chars) if extract_text_calls and box.names else None
        self.wants_text = self._scanner is not None
        self._queue: deque[_Slot] = deque()
        self._text: deque[_Slot] = deque()  # text slots not yet decided, oldest first
        self._held: dict[int, _Held] = {}
        self._passing: set[int] = set()  # indices released unjudged (custom, too long)
        self._remap: dict[int, int] = {}
        self._taken: set[int] = set()  # indices given to extracted calls
        self._top = -1  # the highest index seen or given
        self._extracted = 0  # calls extracted from the text in this message
        self._message_id = ""
        self._id_seed = id_seed

    # -- the stage interface -------------------------------------------------------

    @property
    def holding(self) -> bool:
        """Whether events are held back (the pipelines keep the lane and raw bytes back meanwhile)."""
        return bool(self._queue)

    def feed(self, event: NeutralEvent) -> list[NeutralEvent]:
        if self._inert:
            return [event]
        kind = event.kind
        if kind == "text_delta":
            scanner = self._scanner
            if scanner is None or not event.text:
                return self._push(event)
            if scanner.quiet and not self._queue and not TRIGGER.search(event.text):
                scanner.advance(event.text)  # no trigger: the scanner's state moves as for text
                return [event]
            slot = _Slot(event, None)
            self._queue.append(slot)
            self._text.append(slot)
            self._apply(scanner.feed(event.text))
            return self._flush()
        if kind == "tool_call_start":
            return self._start(event)
        if kind == "tool_call_args_delta":
            held = self._held.get(self._remap.get(event.index, event.index))
            if held is None:
                return self._push(self._moved(event))
            held.deltas.append(event.delta)
            held.size += len(event.delta)
            slot = _Slot(event, None)
            held.slots.append(slot)
            self._queue.append(slot)
            if held.size > MAX_ARGS_CHARS:
                self._release(held, judged=False)
                return self._flush()
            return []
        if kind == "tool_call_end":
            held = self._held.get(self._remap.get(event.index, event.index))
            if held is None:
                return self._push(self._moved(event))
            slot = _Slot(event, None)
            held.slots.append(slot)
            self._queue.append(slot)
            self._release(held, judged=True)
            return self._flush()
        if kind == "stop":
            self._end_text()
            for held in list(self._held.values()):
                self._release(held, judged=True)
            if self._extracted and event.reason in _TO_TOOL_USE:
                self.notes.append(GuardNote(self.name, "stop_reason", {"from": event.reason, "to": "tool_use", "extracted": self._extracted}))
                event = Stop("tool_use")
            self._extracted = 0
            return self._push(event)
        if kind == "message_start":
            self._message_id = event.id
        elif kind == "stream_error":
            self._end_text()
            for held in list(self._held.values()):
                self._release(held, judged=False)
        return self._push(event)

    def lane_open(self) -> bool:
        """Whether any run without a `lane_gate` match would pass unchanged now: nothing held,
        plain text (or a fence or region), no inline code open (a newline would end it)."""
        scanner = self._scanner
        return scanner is None or (not self._queue and scanner.lane_quiet and not scanner.lane_span)

    def lane_text(self, literals: list[bytes]) -> bool:
        scanner = self._scanner
        if scanner is None:
            return True
        return not self._queue and scanner.lane_quiet and take(scanner, literals)

    def finish(self) -> list[NeutralEvent]:
        if self._inert:
            return []
        self._end_text()
        for held in list(self._held.values()):
            self._release(held, judged=False)
        out = self._flush()
        for slot in self._queue:  # nothing should be left undecided; release it as it came
            out += slot.out if slot.out is not None else [slot.event]
        self._queue.clear()
        return out

    # -- the queue -------------------------------------------------------------------

    def _push(self, event: NeutralEvent) -> list[NeutralEvent]:
        if not self._queue:
            return [event]
        self._queue.append(_Slot(event, [event]))
        return self._flush()

    def _flush(self) -> list[NeutralEvent]:
        queue = self._queue
        out: list[NeutralEvent] = []
        while queue and queue[0].out is not None:
            out += queue.popleft().out
        return out

    # -- tool calls from the upstream ------------------------------------------------

    def _moved(self, event: Any) -> Any:
        new = self._remap.get(event.index)
        if new is None:
            return event
        return ToolCallArgsDelta(new, event.delta) if event.kind == "tool_call_args_delta" else ToolCallEnd(new)

    def _start(self, event: ToolCallStart) -> list[NeutralEvent]:
        self._end_text()
        index = event.index
        if index in self._taken or index in self._held:
            self._top += 1
            self._remap[index] = self._top
            event = ToolCallStart(self._top, event.call_id, event.name, event.tool_kind, provider_meta=event.provider_meta)
        self._top = max(self._top, event.index)
        if event.tool_kind != "function":
            self._passing.add(event.index)
            return self._push(event)
        slot = _Slot(event, None)
        self._queue.append(slot)
        self._held[event.index] = _Held(event, slot)
        return []

    def _release(self, held: _Held, judged: bool) -> None:
        del self._held[held.index]
        rewrite = self._judge(held) if judged else None
        if rewrite is None:
            for slot in held.slots:
                slot.out = [self._moved(slot.event) if slot.event.kind != "tool_call_start" else slot.event]
            if not judged:
                self._passing.add(held.index)
            return
        start = held.start
        first = ToolCallStart(start.index, start.call_id, rewrite[0], start.tool_kind, provider_meta=start.provider_meta)
        held.slots[0].out = [first, ToolCallArgsDelta(start.index, rewrite[1])] if rewrite[1] else [first]
        for slot in held.slots[1:]:
            slot.out = [ToolCallEnd(start.index)] if slot.event.kind == "tool_call_end" else []

    def _judge(self, held: _Held) -> tuple[str, str] | None:
        """(name, arguments) to send instead of the held call, or None to send it as it came."""
        called = held.start.name
        raw = "".join(held.deltas)
        detail: dict[str, Any] = {"tool": called, "call_id": held.start.call_id}
        spec = self._specs.get(called)
        name, problems, changes = called, [], []
        if spec is None:
            match = self._resolver.resolve(called)
            if match is None or (not self._repair_names and match.how != "namespace"):
                self.notes.append(GuardNote(self.name, "failed", {**detail, "problems": ["not a declared tool"]}))
                return None
            spec = self._specs[match.name]
            if match.how != "namespace":
                name = match.name
                problems.append(f"tool name {called!r} is not declared")
                changes.append(f"name -> {name!r} ({match.how})")
        if spec.tool_kind != "function":
            return None
        args = raw
        if self._repair_args:
            result = _repair_arguments(raw, spec.parameters, tool_name=spec.name, empty_ok=self._empty_ok)
            if not result.ok:
                detail.update(problems=problems + result.problems, error=result.error)
                self.notes.append(GuardNote(self.name, "failed", detail))
                return None
            if result.changed:
                args = result.text
                problems += result.problems
                changes += result.changes
        if name == called and args == raw:
            return None
        detail.update(tool=name, problems=problems, changes=changes)
        if name != called:
            detail["called"] = called
        self.notes.append(GuardNote(self.name, "repaired", detail))
        return name, args

    # -- text ----------------------------------------------------------------------

    def _end_text(self) -> None:
        if self._scanner is not None and (self._scanner.holding or self._text):
            self._apply(self._scanner.finish())

    def _apply(self, pieces: list) -> None:
        """Map the scanner's decided pieces onto the held text slots, in order."""
        for piece in pieces:
            if type(piece) is str:
                self._consume(len(piece), None)
            else:
                self._consume(len(piece.raw), self._extract(piece))

    def _consume(self, size: int, events: list[NeutralEvent] | None) -> None:
        """Decide the next `size` characters of text: as text, or (`events`) as a call,
        whose events go where its text ends."""
        pending = self._text
        while size > 0 and pending:
            slot = pending[0]
            text = slot.event.text
            take = min(size, len(text) - slot.used)
            if events is None:
                slot.parts.append(text[slot.used : slot.used + take])
            else:
                slot.cut = True
            slot.used += take
            size -= take
            if events is not None and size == 0:
                slot.parts += events
                events = None
            if slot.used == len(text):
                pending.popleft()
                slot.out = self._slot_events(slot)
        if events:  # the scanner decided more text than was held: a bug, but keep the call
            self._queue.append(_Slot(None, events))

    def _slot_events(self, slot: _Slot) -> list[NeutralEvent]:
        if not slot.cut:
            return [slot.event]
        out: list[NeutralEvent] = []
        run: list[str] = []
        for part in slot.parts:
            if type(part) is str:
                run.append(part)
                continue
            if run:
                out.append(TextDelta("".join(run)))
                run = []
            out.append(part)
        if run and "".join(run):
            out.append(TextDelta("".join(run)))
        return out

    def _extract(self, found: Extracted) -> list[NeutralEvent]:
        out: list[NeutralEvent] = []
        for call in found.calls:
            self._top += 1
            index = self._top
            self._taken.add(index)
            self._extracted += 1
            digest = hashlib.sha1(f"{self._id_seed}:{self._message_id}:{index}:{call.name}:{call.arguments}".encode()).hexdigest()[:24]
            call_id = wire_call_id(_ID_PREFIX.get(self.agent_protocol, "call_") + digest, self.agent_protocol)
            out += [ToolCallStart(index, call_id, call.name), ToolCallArgsDelta(index, call.arguments), ToolCallEnd(index)]
            detail: dict[str, Any] = {"tool": call.name, "call_id": call_id, "format": found.fmt, "chars": len(found.raw)}
            if call.called:
                detail["called"] = call.called
            if call.changes:
                detail["changes"] = call.changes
            self.notes.append(GuardNote(self.name, "extracted", detail))
        return out

