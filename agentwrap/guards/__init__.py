"""Guards on the request and the stream: in-chat commands and the content-loop
guard (tool-call repair joins them here).

Pure: events or text in, events or decisions out; nothing here does I/O.
"""

from agentwrap.guards.commands import (
    COMMANDS,
    Command,
    CommandContext,
    SessionOverrides,
    apply_command,
    may_contain_command,
    parse_command,
    reply_events,
)
from agentwrap.guards.loop import LoopDetector, LoopFinding, LoopGuard

__all__ = [
    "COMMANDS",
    "Command",
    "CommandContext",
    "LoopDetector",
    "LoopFinding",
    "LoopGuard",
    "SessionOverrides",
    "apply_command",
    "may_contain_command",
    "parse_command",
    "reply_events",
]
