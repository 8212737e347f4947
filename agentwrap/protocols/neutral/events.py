"""The neutral stream model: small frozen events, made per token.

Every codec decodes its wire stream into these and encodes them back. They
are plain slotted dataclasses (not pydantic) because they are created per
token on the hot path. Provider data that must be echoed back untouched
(thinking signatures, encrypted reasoning) rides in `provider_meta`, never
decoded.

Errors are neutral too: `ErrorType` names what went wrong in no protocol's
words, `DEFAULT_STATUS` is the HTTP status each type stands for and
`STATUS_TYPES` the type an upstream's HTTP status stands for. Each codec maps
these to and from its own wire names (Anthropic `overloaded_error` on 529,
Google `RESOURCE_EXHAUSTED`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ErrorType",
    "DEFAULT_STATUS",
    "STATUS_TYPES",
    "error_status",
    "status_type",
    "merge_usage",
    "StopReason",
    "MessageStart",
    "TextDelta",
    "ThinkingDelta",
    "ToolCallStart",
    "ToolCallArgsDelta",
    "ToolCallEnd",
    "Usage",
    "Stop",
    "StreamError",
    "NeutralEvent",
]

StopReason = Literal["end_turn", "tool_use", "max_tokens", "stop_sequence", "refusal", "error"]

ErrorType = Literal[
    "invalid_request",  # the request cannot be served as sent
    "authentication",  # no or a wrong key
    "permission",  # the key may not do this (or has no quota left)
    "not_found",  # no such model or endpoint
    "rate_limit",  # too many requests: retry later
    "api_error",  # the provider (or agentwrap) failed
    "upstream_unreachable",  # agentwrap could not reach the upstream
    "overloaded",  # the provider is busy: retry later
    "timeout",  # the upstream did not answer in time
]

# The HTTP status of each neutral error type, when nothing more precise is known.
# Anthropic answers "overloaded" with 529, everyone else with 503: see `error_status`.
DEFAULT_STATUS: dict[ErrorType, int] = {
    "invalid_request": 400,
    "authentication": 401,
    "permission": 403,
    "not_found": 404,
    "rate_limit": 429,
    "api_error": 500,
    "upstream_unreachable": 502,
    "overloaded": 503,
    "timeout": 504,
}

# The neutral error type an upstream's HTTP status stands for, when its body does not
# say; other 4xx are "invalid_request", other statuses "api_error" (see `status_type`).
STATUS_TYPES: dict[int, ErrorType] = {
    400: "invalid_request",
    401: "authentication",
    403: "permission",
    404: "not_found",
    408: "timeout",
    413: "invalid_request",
    422: "invalid_request",
    429: "rate_limit",
    503: "overloaded",
    504: "timeout",
    529: "overloaded",
}


def error_status(error_type: str, status: int | None, overloaded: int = 503) -> int:
    """The HTTP status for a neutral error type; an explicit `status` wins."""
    if status is not None:
        return status
    if error_type == "overloaded":
        return overloaded
    return DEFAULT_STATUS.get(error_type, 500)


def status_type(status: int) -> ErrorType:
    """The neutral error type an HTTP status stands for."""
    if status in STATUS_TYPES:
        return STATUS_TYPES[status]
    return "invalid_request" if 400 <= status < 500 else "api_error"


@dataclass(frozen=True, slots=True)
class MessageStart:
    """The assistant message begins. `id` is the response id, `model` what served it."""

    id: str
    model: str
    kind: str = "message_start"


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    kind: str = "text_delta"


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    text: str
    provider_meta: Any = None
    kind: str = "thinking_delta"


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    """A tool call opens. `index` orders parallel calls within one message.

    `tool_kind` is "function" (JSON arguments) or "custom" (freeform text input,
    as Codex's `apply_patch`/`exec` custom tools). `provider_meta` carries data
    to echo back untouched, as Gemini's `thoughtSignature` on a functionCall
    part (`{"thought_signature": ...}`).
    """

    index: int
    call_id: str
    name: str
    tool_kind: str = "function"
    kind: str = "tool_call_start"
    provider_meta: Any = None


@dataclass(frozen=True, slots=True)
class ToolCallArgsDelta:
    index: int
    delta: str
    kind: str = "tool_call_args_delta"


@dataclass(frozen=True, slots=True)
class ToolCallEnd:
    index: int
    kind: str = "tool_call_end"


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts so far. `input_tokens` counts the whole prompt, cached or not
    (OpenAI and Gemini style); `cache_read_tokens` and `cache_write_tokens` are
    parts of it. A stream may carry several: a zero field means "unknown here",
    so encoders keep the latest non-zero value of each field.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    kind: str = "usage"


def merge_usage(old: Usage | None, new: Usage) -> Usage:
    """Keep the latest non-zero value of each field (see `Usage`)."""
    if old is None:
        return new
    return Usage(
        input_tokens=new.input_tokens or old.input_tokens,
        output_tokens=new.output_tokens or old.output_tokens,
        cache_read_tokens=new.cache_read_tokens or old.cache_read_tokens,
        cache_write_tokens=new.cache_write_tokens or old.cache_write_tokens,
    )


@dataclass(frozen=True, slots=True)
class Stop:
    reason: StopReason
    kind: str = "stop"


@dataclass(frozen=True, slots=True)
class StreamError:
    """The stream failed. `error_type` is an `ErrorType` (invalid_request,
    authentication, permission, not_found, rate_limit, api_error,
    upstream_unreachable, overloaded, timeout); `status` the HTTP status to
    report where the agent's protocol carries one."""

    error_type: ErrorType
    message: str
    status: int = 500
    kind: str = "stream_error"


NeutralEvent = (
    MessageStart | TextDelta | ThinkingDelta | ToolCallStart | ToolCallArgsDelta | ToolCallEnd | Usage | Stop | StreamError
)
