"""Output-token limits: where each protocol's request carries one, and the thinking budget.

Two callers share these rules: a backend's `max_output_tokens` cap on a
pass-through request (`cap_output_tokens`, called by the proxy) and the
translation of a request for an Anthropic backend (`anthropic/request.py`,
which uses `thinking_budget`).

The thinking-budget rule. Anthropic requires `1024 <= budget_tokens <
max_tokens`, and the thinking counts against `max_tokens`. A budget is
therefore kept below `max_tokens` with 1024 tokens left for the answer, and
never below Anthropic's minimum of 1024: `max(1024, min(budget, max_tokens -
1024))`. (Before this module the pass-through cap used "cap - 1024, at least
1024" only when the budget reached the cap, so a budget just below the cap
survived and left the answer a handful of tokens; both paths now fit the
budget the same way.)

Sans-IO: plain dicts in and out.
"""

from __future__ import annotations

__all__ = [
    "OUTPUT_LIMIT_KEYS",
    "MIN_THINKING_BUDGET",
    "ANSWER_RESERVE_TOKENS",
    "output_limits",
    "cap_output_tokens",
    "thinking_budget",
]

# Where each protocol's request body carries its output-token limit, as the protocol
# decoders read it (`*/request.py::decode_request`; Chat: `max_completion_tokens` wins
# over `max_tokens`). A path of keys into the body.
OUTPUT_LIMIT_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "anthropic_messages": (("max_tokens",),),
    "openai_chat": (("max_completion_tokens",), ("max_tokens",)),
    "openai_responses": (("max_output_tokens",),),
    "gemini": (("generationConfig", "maxOutputTokens"),),
}

MIN_THINKING_BUDGET = 1024  # Anthropic's smallest budget_tokens
ANSWER_RESERVE_TOKENS = 1024  # what a thinking budget leaves of max_tokens for the answer


def thinking_budget(budget: int, max_tokens: int) -> int:
    """An Anthropic thinking budget fitted below `max_tokens`; see the module docstring."""
    return max(MIN_THINKING_BUDGET, min(budget, max_tokens - ANSWER_RESERVE_TOKENS))


def output_limits(protocol: str, body: dict) -> dict[str, int]:
    """The integer output-token limits `body` sets, by dotted field name."""
    found = {}
    for keys in OUTPUT_LIMIT_KEYS.get(protocol, ()):
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
    the cap, or one the request does not set, stays as it is. When a limit was
    lowered, an Anthropic thinking budget is fitted below the new `max_tokens` by
    `thinking_budget` (only ever lowered: a budget the rule would raise is the
    request's own business).
    """
    lowered = {name: value for name, value in output_limits(protocol, body).items() if value > cap}
    for name in lowered:
        head, _, sub = name.partition(".")
        body = {**body, head: {**body[head], sub: cap} if sub else cap}
    thinking = body.get("thinking")
    if lowered and protocol == "anthropic_messages" and isinstance(thinking, dict):
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and not isinstance(budget, bool):
            fitted = thinking_budget(budget, cap)
            if fitted < budget:
                lowered["thinking.budget_tokens"] = budget
                body = {**body, "thinking": {**thinking, "budget_tokens": fitted}}
    return body, lowered
