"""The neutral model every codec translates to and from, in no protocol's words.

- `events`: the stream events (made per token) and the error taxonomy;
  re-exported here, so `from agentwrap.protocols.neutral import TextDelta` works;
- `request`: `NeutralRequest` and its parts, and sealing of provider data;
- `summary`: `RequestSummary`, what routing and guards need to know of a request.

Sans-IO. Only the events are imported with the package: they are what the
stream path needs.
"""

from agentwrap.protocols.neutral.events import (
    DEFAULT_STATUS,
    STATUS_TYPES,
    ErrorType,
    MessageStart,
    NeutralEvent,
    Stop,
    StopReason,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    error_status,
    merge_usage,
    status_type,
)

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
