"""Shared pieces of the four stream decoders (backend SSE -> neutral events).

Decoders take foreign data: every field is type-checked before use, so any
JSON gives events, and data that is not JSON raises `UpstreamProtocol`.
Sans-IO.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agentwrap.errors import UpstreamProtocol
from agentwrap.protocols.neutral import StreamError, Usage
from agentwrap.protocols.sse import SseEvent

__all__ = ["load", "load_body", "status_type", "truncated", "usage", "safe_id", "as_int", "as_text", "tool_name", "require_shape"]

_STATUS_TYPES = {400: "invalid_request", 401: "authentication", 403: "permission", 404: "not_found", 408: "timeout", 413: "invalid_request", 422: "invalid_request", 429: "rate_limit", 503: "overloaded", 504: "timeout", 529: "overloaded"}


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


def status_type(status: int) -> str:
    """The neutral error type an HTTP status stands for."""
    if status in _STATUS_TYPES:
        return _STATUS_TYPES[status]
    return "invalid_request" if 400 <= status < 500 else "api_error"


def truncated(what: str) -> StreamError:
    """The error for a stream that ended without its terminal event."""
    return StreamError("api_error", f"upstream stream ended before {what}; the response is incomplete", 502)


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else ""


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
