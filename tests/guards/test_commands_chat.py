"""In-chat commands on plain data: parsing, applying, and the reply as neutral events."""

from __future__ import annotations

import json

import pytest

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
from agentwrap.protocols.codec import codec as codec_for
from agentwrap.protocols.neutral import MessageStart, Stop, TextDelta, Usage
from agentwrap.protocols.sse import SseParser


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!/help", Command("help", None, "!/help")),
        ("  !/status \n", Command("status", None, "!/status")),
        ("!/model(claude-opus-4-1)", Command("model", "claude-opus-4-1", "!/model(claude-opus-4-1)")),
        ("!/model( gpt-5 )", Command("model", "gpt-5", "!/model( gpt-5 )")),
        ("!/MODEL(x)", Command("model", "x", "!/MODEL(x)")),
        ("!/backend(local)", Command("backend", "local", "!/backend(local)")),
        ("!/profile(work.v2)", Command("profile", "work.v2", "!/profile(work.v2)")),
        ("!/reset", Command("reset", None, "!/reset")),
        ("!/status()", Command("status", None, "!/status()")),
        # unknown or malformed: still answered by agentwrap, helpfully
        ("!/frobnicate", Command("unknown", None, "!/frobnicate")),
        ("!/", Command("unknown", None, "!/")),
        ("!/model gpt-5", Command("unknown", None, "!/model gpt-5")),
        ("!/model", Command("model", None, "!/model", "::model(NAME) needs a name in the parentheses")),
        ("!/model()", Command("model", None, "!/model()", "::model(NAME) needs a name in the parentheses")),
        ("!/model(a b)", Command("model", "a b", "!/model(a b)", "'a b' is not a valid name; names have no spaces or parentheses")),
        ("!/help(me)", Command("help", "me", "!/help(me)", "::help takes no argument")),
        # Claude Code's reminders around the prompt are not what the user typed
        ("<system-reminder>\nctx\n</system-reminder>\n!/status", Command("status", None, "!/status")),
        # not commands
        (None, None),
        ("", None),
        ("please run !/status for me", None),
        ("!/status\nand also this", None),
        ("!status", None),
        ("/status", None),
        ("look: !/help", None),
    ],
)
def test_parse_command(text, expected) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("body", "maybe"),
    [
        (b'{"messages":[{"role":"user","content":"!/help"}]}', True),
        (b'{"messages":[{"role":"user","content":"!\\/help"}]}', True),
        (b'{"messages":[{"role":"user","content":"hello"}]}', False),
    ],
)
def test_may_contain_command(body, maybe) -> None:
    assert may_contain_command(body) is maybe


CTX = CommandContext(
    profile="work",
    backend="anthropic",
    model="claude-sonnet-4-5",
    input_tokens=1200,
    output_tokens=340,
    requests=3,
    backends=("anthropic", "local"),
    profiles=("work", "offline", "deepseek"),
    models=("claude-sonnet-4-5", "claude-opus-4-1"),
)
SET = SessionOverrides(model="m1", backend="local")

# (command text, context overrides, expected overrides after, reply fragments)
APPLY = [
    ("!/help", SessionOverrides(), SessionOverrides(), [u for u, _ in COMMANDS.values()]),
    ("!/status", SessionOverrides(), SessionOverrides(), ["profile:  work", "backend:  anthropic", "model:    claude-sonnet-4-5", "1200 in, 340 out over 3 request(s)", "overrides: none"]),
    ("!/status", SET, SET, ["backend:  local (override)", "model:    m1 (override)"]),
    ("!/model(claude-opus-4-1)", SessionOverrides(), SessionOverrides(model="claude-opus-4-1"), ["model claude-opus-4-1 for the rest of this session"]),
    ("!/model(mystery)", SessionOverrides(backend="local"), SessionOverrides(model="mystery", backend="local"), ["declares no model 'mystery'", "claude-sonnet-4-5, claude-opus-4-1"]),
    ("!/backend(local)", SessionOverrides(model="m1"), SessionOverrides(model="m1", backend="local"), ["backend local for the rest"]),
    ("!/backend(nope)", SET, SET, ["unknown backend 'nope'; nothing changed", "Known backends: anthropic, local"]),
    ("!/profile(offline)", SET, SessionOverrides(profile="offline"), ["profile offline for the rest"]),
    ("!/profile(nope)", SET, SET, ["unknown profile 'nope'", "Known profiles: work, offline, deepseek"]),
    ("!/reset", SET, SessionOverrides(), ["overrides cleared; back to profile work's routes"]),
    ("!/reset", SessionOverrides(), SessionOverrides(), ["no overrides to clear"]),
    ("!/frobnicate", SET, SET, ["unknown command '!/frobnicate'", "Known commands: ::help, ::status, ::model(NAME)"]),
    ("!/model()", SET, SET, ["needs a name", "Usage: ::model(NAME)"]),
]


@pytest.mark.parametrize(("text", "before", "after", "fragments"), APPLY)
def test_apply_command(text, before, after, fragments) -> None:
    from dataclasses import replace

    cmd = parse_command(text)
    assert cmd is not None
    reply, overrides = apply_command(cmd, replace(CTX, overrides=before))
    assert overrides == after
    for fragment in fragments:
        assert fragment in reply, reply


def test_status_before_any_request() -> None:
    reply, _ = apply_command(parse_command("!/status"), CommandContext(profile="native"))
    assert "(no request yet)" in reply and "backends: (none)" in reply


def test_reply_events_shape() -> None:
    events = reply_events("hello", "claude-sonnet-4-5")
    assert events == [MessageStart("msg_agentwrap_command", "claude-sonnet-4-5"), TextDelta("hello"), Usage(0, 0), Stop("end_turn")]


@pytest.mark.parametrize("protocol", ["anthropic_messages", "openai_chat", "openai_responses", "gemini"])
def test_reply_encodes_in_every_protocol(protocol: str) -> None:
    text, _ = apply_command(parse_command("!/help"), CTX)
    codec = codec_for(protocol)
    body = codec.encode_response(reply_events(text, "m"), "m", "resp_cmd")
    assert json.dumps(text, ensure_ascii=False)[1:-1] in json.dumps(body, ensure_ascii=False)
    encoder = codec.StreamEncoder("m", "resp_cmd")
    stream = b"".join(encoder.feed(e) for e in reply_events(text, "m")) + encoder.finish()
    parser = SseParser()
    events = parser.feed(stream) + parser.finish()
    joined = "".join(e.data for e in events)
    assert json.dumps("::model(NAME)")[1:-1] in joined


@pytest.mark.parametrize("typed", ["::status", "::model(gpt-5)", "  ::reset  ", "::help"])
def test_the_tui_safe_prefix_is_a_command(typed):
    cmd = parse_command(typed)
    assert cmd is not None and cmd.name == typed.strip()[2:].split("(")[0] and cmd.problem is None
    assert may_contain_command(json.dumps({"messages": [{"role": "user", "content": typed}]}).encode())


@pytest.mark.parametrize("text", ["std::vector<int> v;", "a::b", "use ::status to see it", "::"])
def test_code_with_double_colons_is_not_a_command(text):
    cmd = parse_command(text)
    assert cmd is None or cmd.name == "unknown" and text.strip() == "::"
