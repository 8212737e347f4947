"""In-chat commands: `::help`, `::status`, `::model(NAME)`, `::backend(NAME)`,
`::profile(NAME)`, `::reset`, answered by agentwrap itself.

The prefix is `::` because the agents' own TUIs take the others for
themselves: Claude Code, Codex and Gemini CLI all switch to shell mode on a
leading `!` (so `!/status` ran `/status` in bash), and reserve `/` (their
slash commands) and `@` (file mentions); `::status` is sent to the model as
typed in all three (checked in each TUI). `!/` still works where no TUI
stands between (`-p`, `exec`).

Pure: text in, a reply and new session overrides out. The commands addon
(`proxy/addons/commands.py`)

1. checks `may_contain_command(body)` (a byte search, so ordinary requests
   pay nothing), then summarises the body;
2. `parse_command(summary.last_user_text)`: only the newest user message, and
   only when its whole text is one command, so history replays and prose that
   mentions a command never trigger one;
3. `apply_command(cmd, context)` -> (reply text, new overrides);
4. sends `reply_events(text, model)` through the agent protocol's encoder,
   without contacting any backend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agentwrap.protocols.neutral import MessageStart, NeutralEvent, Stop, TextDelta, Usage
from agentwrap.protocols.neutral.summary import typed_text
from agentwrap.routing.router import SessionOverrides

__all__ = [
    "COMMANDS",
    "Command",
    "CommandContext",
    "SessionOverrides",
    "apply_command",
    "help_text",
    "may_contain_command",
    "parse_command",
    "reply_events",
]

# name -> (usage, what it does)
COMMANDS: dict[str, tuple[str, str]] = {
    "help": ("::help", "list these commands"),
    "status": ("::status", "show the profile, backend and model in use, overrides and tokens so far"),
    "model": ("::model(NAME)", "use model NAME for the rest of the session"),
    "backend": ("::backend(NAME)", "send requests to backend NAME for the rest of the session"),
    "profile": ("::profile(NAME)", "switch to profile NAME for the rest of the session"),
    "reset": ("::reset", "clear every override: back to the profile's routes"),
}
_TAKES_NAME = frozenset({"model", "backend", "profile"})

_COMMAND = re.compile(r"(?:::|!/)([A-Za-z][A-Za-z0-9_-]*)(?:\((.*)\))?")
PREFIXES = ("::", "!/")


@dataclass(frozen=True, slots=True)
class Command:
    """A recognised command. `name` is a key of COMMANDS or "unknown";
    `problem` says why it cannot run as typed (missing or unexpected argument)."""

    name: str
    arg: str | None = None
    text: str = ""
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class CommandContext:
    """What the session knows, for `!/status` and for checking names."""

    profile: str  # the profile in use ("native" for pass-through)
    backend: str | None = None  # where the latest request went
    model: str | None = None  # the model it asked for (after any rewrite)
    overrides: SessionOverrides = SessionOverrides()
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    backends: tuple[str, ...] = ()  # backends of the profile in use
    profiles: tuple[str, ...] = ()  # profiles `!/profile` may switch to
    models: tuple[str, ...] = ()  # models the profile declares (hints only)


def may_contain_command(body: bytes) -> bool:
    """Cheap pre-check on the raw request body: could it carry a command at all?"""
    return b"::" in body or b"!/" in body or b"!\\/" in body


def parse_command(text: str | None) -> Command | None:
    """The command `text` consists of, or None when it is not (only) a command.

    Text that starts with `::` or `!/` on a single line is a command attempt: an
    unknown or malformed one comes back as `Command("unknown")` or with a
    `problem`, so the user gets a helpful reply instead of a model's guess.
    """
    if not text or ("::" not in text and "!/" not in text):
        return None
    stripped = typed_text(text) or ""
    if not stripped.startswith(PREFIXES) or "\n" in stripped or "\r" in stripped:
        return None
    m = _COMMAND.fullmatch(stripped)
    if m is None:
        return Command("unknown", text=stripped)
    name, arg = m.group(1).lower(), m.group(2)
    if arg is not None:
        arg = arg.strip()
    if name not in COMMANDS:
        return Command("unknown", arg, stripped)
    usage = COMMANDS[name][0]
    if name in _TAKES_NAME:
        if not arg:
            return Command(name, None, stripped, f"{usage} needs a name in the parentheses")
        if any(c.isspace() for c in arg) or "(" in arg or ")" in arg:
            return Command(name, arg, stripped, f"{arg!r} is not a valid name; names have no spaces or parentheses")
    elif arg:
        return Command(name, arg, stripped, f"{usage} takes no argument")
    return Command(name, arg or None, stripped)


def help_text() -> str:
    width = max(len(usage) for usage, _ in COMMANDS.values())
    lines = [f"  {usage.ljust(width)}  {what}" for usage, what in COMMANDS.values()]
    return "agentwrap commands (type one alone as your whole message):\n" + "\n".join(lines)


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names) if names else "(none)"


def _status(ctx: CommandContext) -> str:
    ov = ctx.overrides
    lines = [
        "agentwrap status",
        f"  profile:  {ov.profile or ctx.profile}" + (" (override)" if ov.profile else ""),
        f"  backend:  {ov.backend or ctx.backend or '(no request yet)'}" + (" (override)" if ov.backend else ""),
        f"  model:    {ov.model or ctx.model or '(no request yet)'}" + (" (override)" if ov.model else ""),
        f"  tokens:   {ctx.input_tokens} in, {ctx.output_tokens} out over {ctx.requests} request(s)",
        f"  backends: {_names(ctx.backends)}",
    ]
    if not ov.active:
        lines.append("  overrides: none")
    return "\n".join(lines)


def apply_command(cmd: Command, ctx: CommandContext) -> tuple[str, SessionOverrides]:
    """The reply to `cmd` and the session overrides after it (unchanged unless the command applies)."""
    ov = ctx.overrides
    if cmd.name == "unknown":
        known = ", ".join(usage for usage, _ in COMMANDS.values())
        return f"agentwrap: unknown command {cmd.text!r}. Known commands: {known}.\n\n{help_text()}", ov
    if cmd.problem is not None:
        return f"agentwrap: {cmd.problem}. Usage: {COMMANDS[cmd.name][0]} - {COMMANDS[cmd.name][1]}.", ov
    if cmd.name == "help":
        return help_text(), ov
    if cmd.name == "status":
        return _status(ctx), ov
    if cmd.name == "reset":
        if not ov.active:
            return f"agentwrap: no overrides to clear; using profile {ctx.profile}'s routes.", ov
        return f"agentwrap: overrides cleared; back to profile {ctx.profile}'s routes.", SessionOverrides()
    name = cmd.arg or ""
    if cmd.name == "model":
        new = SessionOverrides(model=name, backend=ov.backend, profile=ov.profile)
        reply = f"agentwrap: model {name} for the rest of this session (background requests keep their own route). ::reset undoes it."
        if ctx.models and name not in ctx.models:
            reply += f" Note: the profile declares no model {name!r} (declared: {_names(ctx.models)}); the backend decides whether it exists."
        return reply, new
    if cmd.name == "backend":
        if name not in ctx.backends:
            return f"agentwrap: unknown backend {name!r}; nothing changed. Known backends: {_names(ctx.backends)}.", ov
        new = SessionOverrides(model=ov.model, backend=name, profile=ov.profile)
        return f"agentwrap: backend {name} for the rest of this session. ::reset undoes it.", new
    # profile
    if name not in ctx.profiles:
        return f"agentwrap: unknown profile {name!r}; nothing changed. Known profiles: {_names(ctx.profiles)}.", ov
    # A new profile brings its own backends and routes, so backend and model overrides end here.
    return f"agentwrap: profile {name} for the rest of this session. ::reset undoes it.", SessionOverrides(profile=name)


def reply_events(text: str, model: str, response_id: str = "msg_agentwrap_command") -> list[NeutralEvent]:
    """A complete assistant message carrying `text`, as neutral events for any protocol's encoder."""
    return [MessageStart(id=response_id, model=model), TextDelta(text), Usage(0, 0), Stop("end_turn")]
