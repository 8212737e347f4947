"""The translation adapter: the backend's neutral events, adjusted for the agent.

It maps tool names back, turns a freeform tool's `{"input": ...}` function
arguments back into raw text, gives argument-less calls "{}", and, when the
protocols differ, seals the backend's opaque data (signatures, encrypted
reasoning) into the agent protocol's own opaque field (see
`neutral.request.seal`) so it comes back next turn and reaches only its
producer. It has a stream filter's shape (`feed(event) -> list[event]`,
`lane_text(literals) -> bool`, `finish()`): the first filter of a stream.
Sans-IO.
"""

from __future__ import annotations

import json
from typing import Any

from agentwrap.protocols.neutral.events import NeutralEvent, ThinkingDelta, ToolCallArgsDelta, ToolCallStart
from agentwrap.protocols.neutral.request import seal, wire_call_id
from agentwrap.protocols.translate.request import TranslationContext

__all__ = ["Adapter"]

_OPAQUE_FIELD = {"anthropic_messages": "signature", "openai_responses": "encrypted_content", "gemini": "thought_signature"}


def _unwrap_input(text: str) -> str:
    """The raw input of a freeform call that went to the backend as a function."""
    try:
        value = json.loads(text)
    except ValueError:
        return text  # the model wrote the raw text itself: keep it
    if isinstance(value, dict):
        if isinstance(value.get("input"), str):
            return value["input"]
        strings = [v for v in value.values() if isinstance(v, str)]
        if len(value) == 1 and strings:
            return strings[0]
    return text


class Adapter:
    """Neutral events from the backend, adjusted for the agent; see the module docstring.

    The shape of a stream filter (`guards.base.StreamFilter`): the first stage
    between the backend's decoder and the agent's encoder.
    """

    name = "translation"
    wants_text = True  # text resets the thinking text a signature covers

    def __init__(self, ctx: TranslationContext) -> None:
        self.ctx = ctx
        self.notes: list = []  # the adapter changes nothing a note must report
        self.seal = ctx.agent_protocol != ctx.backend_protocol
        self._thinking: list[str] = []  # thinking text since the last sealed meta
        self._custom: dict[int, list[str]] = {}  # calls whose JSON wrapper is held back
        self._function: dict[int, bool] = {}  # function calls -> whether arguments came

    def _sealed(self, meta: Any) -> dict | None:
        key = _OPAQUE_FIELD.get(self.ctx.agent_protocol)
        if key is None or not isinstance(meta, dict):
            return None  # Chat has no opaque field: the data cannot survive the agent
        # Anthropic signatures cover the thinking text, so it travels along.
        text = "".join(self._thinking) if self.ctx.backend_protocol == "anthropic_messages" else ""
        self._thinking = []
        return {key: seal(self.ctx.backend_protocol, meta, text)}

    def feed(self, event: NeutralEvent) -> list[NeutralEvent]:
        kind = event.kind
        if kind == "thinking_delta":
            if not self.seal:
                return [event]
            if event.text:
                self._thinking.append(event.text)
            if event.provider_meta is None:
                return [event]
            sealed = self._sealed(event.provider_meta)
            return [ThinkingDelta(event.text, sealed)] if sealed is not None or event.text else []
        if kind == "text_delta":
            self._thinking = []
            return [event]
        if kind == "tool_call_start":
            return self._start(event)
        if kind == "tool_call_args_delta":
            if event.index in self._custom:
                self._custom[event.index].append(event.delta)
                return []
            if event.delta and event.index in self._function:
                self._function[event.index] = True
            return [event]
        if kind == "tool_call_end":
            return self._end(event.index) + [event]
        return [event]

    def lane_text(self, literals: list[bytes]) -> bool:
        """Text deltas went by on the text lane: what `feed` does for each. Always True
        (passed unchanged): the adapter never needs the text itself."""
        self._thinking = []
        return True

    def _start(self, event: ToolCallStart) -> list[NeutralEvent]:
        self._thinking = []
        out: list[NeutralEvent] = []
        meta = event.provider_meta
        if meta is not None and self.seal:
            # A Gemini signature on a functionCall has no slot in other agents'
            # tool calls: it rides on an empty thinking block just before.
            # "next" tells the Gemini encoder the signature belongs on the part
            # after the thinking (this call), not on the thinking text itself.
            sealed = self._sealed({**meta, "next": True})
            if sealed is not None:
                out.append(ThinkingDelta("", sealed))
            meta = None
        name = self.ctx.tool_names.get(event.name, event.name)
        tool_kind = event.tool_kind
        if name in self.ctx.custom_tools and tool_kind == "function":
            tool_kind = "custom"
            self._custom[event.index] = []
        elif tool_kind == "function":
            self._function[event.index] = False
        if name in self.ctx.namespaces:
            namespace, name = self.ctx.namespaces[name]
            meta = {**(meta or {}), "namespace": namespace}
        call_id = wire_call_id(event.call_id, self.ctx.agent_protocol)
        out.append(ToolCallStart(event.index, call_id, name, tool_kind, provider_meta=meta))
        return out

    def _end(self, index: int) -> list[NeutralEvent]:
        if index in self._custom:
            text = _unwrap_input("".join(self._custom.pop(index)))
            return [ToolCallArgsDelta(index, text)] if text else []
        if self._function.pop(index, True) is False:
            return [ToolCallArgsDelta(index, "{}")]  # agents parse arguments; "" is not JSON
        return []

    def finish(self) -> list[NeutralEvent]:
        out: list[NeutralEvent] = []
        for index in list(self._custom):
            out += self._end(index)
        return out
