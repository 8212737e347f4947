"""Guards on the request and the stream: in-chat commands (loop detection and
tool-call repair join them here).

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

__all__ = [
    "COMMANDS",
    "Command",
    "CommandContext",
    "SessionOverrides",
    "apply_command",
    "may_contain_command",
    "parse_command",
    "reply_events",
]
