"""Guards on the request and the stream: in-chat commands, the content-loop
guard, the tool-call loop guard and tool-call repair (`guards.repair`).

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
from agentwrap.guards.loop import LoopDetector, LoopFinding
from agentwrap.guards.loop_guard import LoopGuard

# Imported on first use: the dispatcher imports `guards.commands` on its path,
# which should not pay for the tool-loop guard's regexes.
_LAZY = {
    "ToolLoopGuard": "tool_loop",
    "ToolLoopVerdict": "tool_loop",
    "answer_events": "tool_loop",
    "mask_volatile": "volatile",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agentwrap.guards' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"agentwrap.guards.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "COMMANDS",
    "Command",
    "CommandContext",
    "LoopDetector",
    "LoopFinding",
    "LoopGuard",
    "SessionOverrides",
    "ToolLoopGuard",
    "ToolLoopVerdict",
    "answer_events",
    "apply_command",
    "mask_volatile",
    "may_contain_command",
    "parse_command",
    "reply_events",
]
