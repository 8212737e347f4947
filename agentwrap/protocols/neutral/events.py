"""The neutral stream model: small frozen events, made per token.

Every codec decodes its wire stream into these and encodes them back. They
are plain slotted dataclasses (not pydantic) because they are created per
token on the hot path. Provider data that must be echoed back untouched
(thinking signatures, encrypted reasoning) rides in `provider_meta`, never
decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
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


@dataclass(frozen=True, slots=True)
class Stop:
    reason: StopReason
    kind: str = "stop"


@dataclass(frozen=True, slots=True)
class StreamError:
    """The stream failed. `error_type` is neutral: rate_limit, overloaded,
    invalid_request, authentication, not_found, api_error, timeout."""

    error_type: str
    message: str
    status: int = 500
    kind: str = "stream_error"


NeutralEvent = (
    MessageStart | TextDelta | ThinkingDelta | ToolCallStart | ToolCallArgsDelta | ToolCallEnd | Usage | Stop | StreamError
)
