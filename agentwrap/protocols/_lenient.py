"""Lenient readers of foreign JSON: every field is type-checked before use.

Decoders and summaries take what providers and agents send: any JSON value
gives events (or a summary), and data that is not JSON raises
`UpstreamProtocol`. The capture views (`capture/answers.py`, `capture/turns.py`)
read recorded bodies with the same accessors. Sans-IO.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from agentwrap.errors import UpstreamProtocol
from agentwrap.protocols.neutral.events import StreamError, Usage

if TYPE_CHECKING:
    from agentwrap.protocols.sse import SseEvent

__all__ = [
    "as_dict",
    "as_list",
    "as_str",
    "as_text",
    "as_int",
    "load",
    "load_body",
    "truncated",
    "usage",
    "safe_id",
    "tool_name",
    "require_shape",
]


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    """`value` if it is a string, else None (absent and wrongly typed look the same)."""
    return value if isinstance(value, str) else None


def as_text(value: Any) -> str:
    """`value` if it is a string, else ""."""
    return value if isinstance(value, str) else ""


def as_int(value: Any) -> int:
    """`value` if it is a count (an int, not a bool, not negative), else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def load(event: SseEvent) -> Any:
    """The JSON value of an event's data. Raises `UpstreamProtocol` if it is not JSON."""
    try:
        return json.loads(event.data)
    except ValueError as exc:
        raise UpstreamProtocol(f"upstream stream event is not JSON: {event.data[:120]!r}") from exc


def load_body(body: bytes) -> Any:
    """The JSON value of a response body, or None."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def truncated(what: str) -> StreamError:
    """The error for a stream that ended without its terminal event."""
    return StreamError("api_error", f"upstream stream ended before {what}; the response is incomplete", 502)


def tool_name(value: Any) -> str:
    """A tool call's name. Raises `UpstreamProtocol` for a call without one:
    no agent can run it, and inventing a name would hide the fault."""
    if not isinstance(value, str) or not value:
        raise UpstreamProtocol(f"upstream sent a tool call without a name ({value!r})")
    return value


def require_shape(body: Any, *keys: str) -> dict:
    """`body` if it is an object holding one of `keys`; else `UpstreamProtocol`."""
    if not isinstance(body, dict) or not any(k in body for k in keys):
        raise UpstreamProtocol(f"upstream response is not a model response (expected one of {', '.join(keys)})")
    return body


def usage(input_tokens: Any = 0, output_tokens: Any = 0, cache_read: Any = 0, cache_write: Any = 0) -> Usage:
    return Usage(as_int(input_tokens), as_int(output_tokens), as_int(cache_read), as_int(cache_write))


def safe_id(value: str) -> str:
    """`value` reduced to characters every protocol accepts in ids."""
    return re.sub(r"[^A-Za-z0-9_-]", "", value)[:48]
