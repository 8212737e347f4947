"""A backend's `max_output_tokens`, as an addon: no request asks it for more.

On a pass-through leg the addon lowers every output-token limit of the body
above the cap (`cap_output_tokens`). A translated leg is capped by the
translation itself (`translate_request(max_tokens_cap=...)`: the neutral
request's limit, set where the request had none); the addon only writes the
capture note for it. Either way the note says which limits were lowered and
from what (`None`: the request set none).
"""

from __future__ import annotations

__all__ = ["OutputCap", "output_limits", "cap_output_tokens"]

# Where each protocol's request body carries its output-token limit, as the protocol
# decoders read it (Chat: `max_completion_tokens` wins over `max_tokens`).
_OUTPUT_LIMIT_KEYS = {
    "anthropic_messages": (("max_tokens",),),
    "openai_chat": (("max_completion_tokens",), ("max_tokens",)),
    "openai_responses": (("max_output_tokens",),),
    "gemini": (("generationConfig", "maxOutputTokens"),),
}


def output_limits(protocol: str, body: dict) -> dict[str, int]:
    """The integer output-token limits `body` sets, by dotted field name."""
    found = {}
    for keys in _OUTPUT_LIMIT_KEYS.get(protocol, ()):
        value = body
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            found[".".join(keys)] = value
    return found


def cap_output_tokens(protocol: str, body: dict, cap: int) -> tuple[dict, dict[str, int]]:
    """A backend's `max_output_tokens` on a pass-through request: (body, {field: value it had}).

    Every limit above `cap` is lowered to it, in a copy (the caller's body is left
    alone; with nothing above the cap, `body` itself comes back). A limit at or below
    the cap, or one the request does not set, stays as it is. An Anthropic thinking
    budget that no longer fits below the lowered `max_tokens` is lowered as
    translation does it: to the cap less 1024 tokens for the answer, at least 1024.
    """
    lowered = {name: value for name, value in output_limits(protocol, body).items() if value > cap}
    for name in lowered:
        head, _, sub = name.partition(".")
        body = {**body, head: {**body[head], sub: cap} if sub else cap}
    thinking = body.get("thinking")
    if lowered and protocol == "anthropic_messages" and isinstance(thinking, dict):
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and not isinstance(budget, bool) and budget >= cap:
            lowered["thinking.budget_tokens"] = budget
            body = {**body, "thinking": {**thinking, "budget_tokens": max(1024, cap - 1024)}}
    return body, lowered


class OutputCap:
    """Applies and notes each backend's `max_output_tokens` (see the module docstring)."""

    def upstream_request(self, flow, leg) -> None:
        backend = leg.config
        cap = backend.max_output_tokens
        if not cap or flow.parsed is None:
            return
        if leg.translated:
            name, requested = next(iter(output_limits(flow.protocol, flow.parsed).items()), ("max_tokens", None))
            if requested is None or requested > cap:
                flow.note(_note(backend, {name: requested}))
            return
        body, lowered = cap_output_tokens(flow.protocol, leg.json, cap)
        if lowered:
            leg.json = body
            flow.note(_note(backend, lowered))


def _note(backend, lowered: dict[str, int | None]) -> dict:
    """The capture record of a `max_output_tokens` adjustment (a None value: the request set no limit)."""
    return {"guard": "max_output_tokens", "backend": backend.name, "cap": backend.max_output_tokens, "lowered": lowered}
