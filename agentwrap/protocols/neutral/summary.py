"""What routing and guards need to know about a request, in neutral terms.

Each codec's `summarize_request(body, path)` fills a `RequestSummary`; the
helpers here are shared by them (the lenient accessors are in `_lenient`).
Sans-IO and lenient: odd fields are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentwrap.errors import RequestError

__all__ = ["RequestSummary", "ToolSpec"]


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
