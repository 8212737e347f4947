"""What routing and guards need to know about a request, in neutral terms.

Each codec's `summarize_request(body, path)` fills a `RequestSummary`; the
helpers here are shared by them (the lenient accessors are in `_lenient`).
Sans-IO and lenient: odd fields are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agentwrap.errors import RequestError

__all__ = ["RequestSummary", "ToolSpec", "typed_text"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool the agent offers. `tool_kind` is "function" or "custom" (freeform text)."""

    name: str
    tool_kind: str = "function"
    description: str = ""
    parameters: dict | None = None


@dataclass(frozen=True, slots=True)
class RequestSummary:
    """The routing-relevant facts of one model request."""

    model: str | None
    stream: bool
    assistant_turns: int
    tools: tuple[ToolSpec, ...]
    json_schema: dict | None
    json_mode: bool
    last_user_text: str | None
    thinking: bool


def require_dict(body: Any) -> dict:
    """Return `body` if it is a JSON object; raise `RequestError` otherwise."""
    if not isinstance(body, dict):
        raise RequestError(f"Request body must be a JSON object, got {type(body).__name__}.")
    return body


def tool_spec(name: Any, kind: str, description: Any, parameters: Any) -> ToolSpec | None:
    """Build a ToolSpec from loosely typed fields; None when there is no usable name."""
    if not isinstance(name, str) or not name:
        return None
    return ToolSpec(
        name=name,
        tool_kind=kind,
        description=description if isinstance(description, str) else "",
        parameters=parameters if isinstance(parameters, dict) else None,
    )


def join_text(parts: list[str]) -> str | None:
    return "\n".join(parts) if parts else None


_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)
_CONTEXT_END = "</session_context>"


def typed_text(text: str | None) -> str | None:
    """What the user typed, of a user message's text (`RequestSummary.last_user_text`):
    without what the agents add around it, Gemini CLI's session context (an
    introduction ending in `</session_context>`, in the first user message) and Claude
    Code's `<system-reminder>` blocks; stripped of surrounding whitespace."""
    if not text:
        return text
    if _CONTEXT_END in text:
        text = text.rsplit(_CONTEXT_END, 1)[1]
    if "<system-reminder>" in text:
        text = _REMINDER.sub("", text)
    return text.strip()
