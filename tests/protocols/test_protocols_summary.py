"""summarize_request of each codec on bodies shaped like the real agents' requests."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwrap.errors import RequestError
from agentwrap.protocols import anthropic, gemini, openai_chat, openai_responses
from agentwrap.protocols.neutral.summary import RequestSummary, ToolSpec, typed_text

CODECS = [anthropic, openai_chat, openai_responses, gemini]

READ_SCHEMA = {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}

CLAUDE_CODE = {
    "model": "claude-sonnet-4-5-20250929",
    "max_tokens": 32000,
    "stream": True,
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.3; cc_entrypoint=cli"},
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.", "cache_control": {"type": "ephemeral"}},
    ],
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>\nAs you answer, use the context.\n</system-reminder>"},
            {"type": "text", "text": "fix the failing test in app.py"},
        ]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Read it first.", "signature": "EqQBCkYIBxgC"},
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_01A", "name": "Read", "input": {"file_path": "/w/app.py"}},
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": "def f(): ..."}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01B", "name": "Bash", "input": {"command": "pytest"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01B", "content": "1 failed", "is_error": True}]},
        {"role": "system", "content": "Plan mode is off."},
    ],
    "tools": [
        {"name": "Read", "description": "Reads a file", "input_schema": READ_SCHEMA},
        {"name": "Bash", "description": "Runs a command", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
    ],
    "thinking": {"type": "adaptive"},
    "metadata": {"user_id": "user_abc_account__session_1"},
}

CODEX = {
    "model": "gpt-5.1-codex",
    "instructions": "You are Codex, based on GPT-5.",
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions instructions>sandboxed</permissions instructions>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment_context>\n  <cwd>/w</cwd>\n</environment_context>"}]},
        {"type": "additional_tools", "tools": [
            {"type": "custom", "name": "exec", "description": "Run a shell command.", "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
        ]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "add a test for parse()"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Looking"}], "encrypted_content": "gAAAA"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking the tree."}]},
        {"type": "function_call", "name": "shell", "arguments": "{\"command\":[\"ls\"]}", "call_id": "call_1"},
        {"type": "function_call_output", "call_id": "call_1", "output": "parse.py"},
        {"type": "custom_tool_call", "name": "exec", "input": "cat parse.py", "call_id": "call_2"},
        {"type": "custom_tool_call_output", "call_id": "call_2", "output": "def parse(): ..."},
    ],
    "tools": [
        {"type": "function", "name": "shell", "description": "Runs a shell command", "strict": False,
         "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}}},
        {"type": "custom", "name": "apply_patch", "description": "Edit files", "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin"}},
        {"type": "web_search"},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "0199-session",
}

GEMINI_CLI = {
    "contents": [
        {"role": "user", "parts": [{"text": "This is the Gemini CLI. We are setting up the context for our chat."}]},
        {"role": "model", "parts": [{"text": "Got it. Thanks for the context!"}]},
        {"role": "user", "parts": [{"text": "list the files here"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "list_directory", "args": {"path": "/w"}}, "thoughtSignature": "CiQB"}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "list_directory", "response": {"output": "a.py\nb.py"}}}]},
    ],
    "systemInstruction": {"role": "user", "parts": [{"text": "You are an interactive CLI agent."}]},
    "tools": [{"functionDeclarations": [
        {"name": "list_directory", "description": "Lists a directory", "parametersJsonSchema": {"type": "object", "properties": {"path": {"type": "string"}}}},
        {"name": "read_file", "description": "Reads a file", "parameters": {"type": "OBJECT", "properties": {"absolute_path": {"type": "STRING"}}}},
    ]}],
    "generationConfig": {"temperature": 0, "topP": 1, "thinkingConfig": {"includeThoughts": True, "thinkingBudget": -1}},
}

ROUTER_SCHEMA = {
    "type": "object",
    "properties": {"complexity_reasoning": {"type": "string"}, "complexity_score": {"type": "integer", "minimum": 1, "maximum": 10}},
    "required": ["complexity_reasoning", "complexity_score"],
}
GEMINI_ROUTER = {
    "contents": [{"role": "user", "parts": [{"text": "Classify this request: refactor the auth module"}]}],
    "generationConfig": {
        "temperature": 0,
        "responseMimeType": "application/json",
        "responseJsonSchema": ROUTER_SCHEMA,
        "thinkingConfig": {"thinkingBudget": 0},
    },
}

CHAT = {
    "model": "gpt-4.1",
    "stream": True,
    "stream_options": {"include_usage": True},
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "weather in"}, {"type": "text", "text": "Paris?"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "assistant", "content": "Sunny."},
        {"role": "user", "content": "and tomorrow?"},
    ],
    "tools": [{"type": "function", "function": {"name": "weather", "description": "Get weather", "parameters": {"type": "object"}}}],
    "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}},
    "reasoning_effort": "low",
}


def test_claude_code_request() -> None:
    summary = anthropic.summarize_request(CLAUDE_CODE, "/v1/messages")
    assert summary == RequestSummary(
        model="claude-sonnet-4-5-20250929",
        stream=True,
        assistant_turns=2,
        tools=(
            ToolSpec("Read", "function", "Reads a file", READ_SCHEMA),
            ToolSpec("Bash", "function", "Runs a command", {"type": "object", "properties": {"command": {"type": "string"}}}),
            ToolSpec("web_search", "function", "", None),
        ),
        json_schema=None,
        json_mode=False,
        last_user_text=None,  # the newest user message holds only a tool result
        thinking=True,
    )


def test_claude_code_first_turn_text() -> None:
    body = {**CLAUDE_CODE, "messages": CLAUDE_CODE["messages"][:1], "thinking": {"type": "disabled"}}
    summary = anthropic.summarize_request(body)
    # the prompt is the newest text block; Claude Code's reminders come before it
    assert summary.last_user_text == "fix the failing test in app.py"
    assert summary.assistant_turns == 0
    assert summary.thinking is False


def test_anthropic_structured_output() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "output_format": {"type": "json_schema", "schema": ROUTER_SCHEMA}}
    summary = anthropic.summarize_request(body)
    assert summary.json_mode and summary.json_schema == ROUTER_SCHEMA
    assert summary.last_user_text == "hi" and summary.stream is False


def test_codex_request() -> None:
    summary = openai_responses.summarize_request(CODEX, "/v1/responses")
    assert summary.model == "gpt-5.1-codex"
    assert summary.stream is True
    # reasoning + message + function_call is one turn; custom_tool_call another.
    assert summary.assistant_turns == 2
    assert [(t.name, t.tool_kind) for t in summary.tools] == [("shell", "function"), ("apply_patch", "custom"), ("exec", "custom")]
    assert summary.tools[0].parameters == CODEX["tools"][0]["parameters"]
    assert summary.tools[2].description == "Run a shell command." and summary.tools[2].parameters is None
    assert summary.last_user_text is None  # the newest user-side item is a tool output
    assert summary.thinking is True
    assert summary.json_mode is False and summary.json_schema is None


def test_codex_first_turn_and_string_input() -> None:
    summary = openai_responses.summarize_request({**CODEX, "input": CODEX["input"][:4], "reasoning": {"effort": "none"}})
    assert summary.last_user_text == "add a test for parse()"
    assert summary.assistant_turns == 0
    assert summary.thinking is False
    summary = openai_responses.summarize_request({"model": "m", "input": "hello", "text": {"format": {"type": "json_schema", "name": "x", "schema": ROUTER_SCHEMA}}})
    assert summary.last_user_text == "hello"
    assert summary.json_mode and summary.json_schema == ROUTER_SCHEMA
    assert summary.thinking is False


def test_gemini_cli_request() -> None:
    summary = gemini.summarize_request(GEMINI_CLI, "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse")
    assert summary.model == "gemini-2.5-pro"
    assert summary.stream is True
    assert summary.assistant_turns == 2
    assert [t.name for t in summary.tools] == ["list_directory", "read_file"]
    assert summary.tools[0].parameters == {"type": "object", "properties": {"path": {"type": "string"}}}
    assert summary.tools[1].parameters == {"type": "OBJECT", "properties": {"absolute_path": {"type": "STRING"}}}
    assert summary.last_user_text is None  # functionResponse only
    assert summary.thinking is True
    assert summary.json_mode is False


def test_gemini_cli_routing_call() -> None:
    summary = gemini.summarize_request(GEMINI_ROUTER, "/v1beta/models/gemini-2.5-flash-lite:generateContent")
    assert summary.model == "gemini-2.5-flash-lite"
    assert summary.stream is False
    assert summary.json_mode is True
    assert summary.json_schema == ROUTER_SCHEMA
    assert set(summary.json_schema["properties"]) == {"complexity_reasoning", "complexity_score"}
    assert summary.thinking is False  # thinkingBudget 0 turns thinking off
    assert summary.last_user_text == "Classify this request: refactor the auth module"
    assert summary.tools == ()


def test_gemini_code_assist_envelope() -> None:
    body = {"model": "gemini-2.5-pro", "project": "p-1", "user_prompt_id": "x", "request": GEMINI_CLI}
    summary = gemini.summarize_request(body, "/v1internal:streamGenerateContent?alt=sse")
    assert summary.model == "gemini-2.5-pro" and summary.stream is True and summary.assistant_turns == 2


def test_chat_request() -> None:
    summary = openai_chat.summarize_request(CHAT, "/v1/chat/completions")
    assert summary == RequestSummary(
        model="gpt-4.1",
        stream=True,
        assistant_turns=2,
        tools=(ToolSpec("weather", "function", "Get weather", {"type": "object"}),),
        json_schema={"type": "object"},
        json_mode=True,
        last_user_text="and tomorrow?",
        thinking=True,
    )
    tool_last = {**CHAT, "messages": CHAT["messages"][:4], "response_format": {"type": "json_object"}, "reasoning_effort": None}
    summary = openai_chat.summarize_request(tool_last)
    assert summary.last_user_text is None and summary.json_mode and summary.json_schema is None and not summary.thinking


@pytest.mark.parametrize("codec", CODECS, ids=[c.PROTOCOL for c in CODECS])
@pytest.mark.parametrize("body", [None, [], "text", 3, [{"role": "user"}]])
def test_non_object_body_raises_request_error(codec: Any, body: Any) -> None:
    with pytest.raises(RequestError):
        codec.summarize_request(body)


@pytest.mark.parametrize("codec", CODECS, ids=[c.PROTOCOL for c in CODECS])
def test_empty_body_is_fine(codec: Any) -> None:
    summary = codec.summarize_request({})
    assert summary.assistant_turns == 0 and summary.tools == () and summary.last_user_text is None
    assert summary.stream is False and summary.thinking is False and summary.json_mode is False


_keys = st.sampled_from([
    "model", "stream", "messages", "input", "contents", "tools", "role", "content", "type", "text", "parts",
    "function", "functionDeclarations", "name", "parameters", "thinking", "reasoning", "effort", "generationConfig",
    "responseMimeType", "thinkingConfig", "response_format", "json_schema", "schema", "format", "request", "x",
])
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.sampled_from(["user", "assistant", "model", "function", "custom", "application/json", "additional_tools", "text", "json_schema"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _json, max_size=6), st.sampled_from(["", "/v1beta/models/x:streamGenerateContent", "models/", ":"]))
def test_odd_bodies_never_raise(body: dict, path: str) -> None:
    for codec in CODECS:
        summary = codec.summarize_request(body, path)
        assert isinstance(summary, RequestSummary)
        assert summary.model is None or isinstance(summary.model, str)
        assert all(isinstance(t, ToolSpec) for t in summary.tools)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, prefix + (index,))
    return out


def _replace(node: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    copy = dict(node) if isinstance(node, dict) else list(node)
    copy[path[0]] = _replace(node[path[0]], path[1:], value)
    return copy


REAL_BODIES = [CLAUDE_CODE, CODEX, GEMINI_CLI, GEMINI_ROUTER, CHAT]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(REAL_BODIES), st.lists(st.tuples(st.integers(0, 10_000), _json), min_size=1, max_size=4))
def test_mutated_real_bodies_never_raise(body: dict, mutations: list[tuple[int, Any]]) -> None:
    for pick, value in mutations:
        paths = _paths(body)[1:]  # never replace the whole body
        body = _replace(body, paths[pick % len(paths)], value)
    for codec in CODECS:
        assert isinstance(codec.summarize_request(body, "/v1beta/models/m:streamGenerateContent"), RequestSummary)


# -- what the user typed, without what the agents wrap around it ------------------------------------

GEMINI_FIRST_TURN = {"contents": [{"role": "user", "parts": [
    {"text": "<session_context>\nThis is the Gemini CLI. We are setting up the context for our chat.\n"
             "Today's date is Thursday.\n- **Workspace Directories:**\n  - /w\n</session_context>"},
    {"text": "hello there"},
]}]}


@pytest.mark.parametrize(("body", "protocol", "typed"), [
    ({**CLAUDE_CODE, "messages": CLAUDE_CODE["messages"][:1]}, anthropic, "fix the failing test in app.py"),  # after a <system-reminder>
    (GEMINI_FIRST_TURN, gemini, "hello there"),  # Gemini CLI's session context before it
    ({"messages": [{"role": "user", "content": "  ::status\n"}]}, anthropic, "::status"),
    ({"input": "a <b>plain</b> prompt"}, openai_responses, "a <b>plain</b> prompt"),
])
def test_typed_text_is_what_the_user_typed(body: dict, protocol, typed: str) -> None:
    summary = protocol.summarize_request(body, "/v1beta/models/m:generateContent")
    assert typed_text(summary.last_user_text) == typed


def test_typed_text_keeps_text_that_only_mentions_the_wrappers() -> None:
    text = "why does the prompt say <system-reminder> without closing it?"
    assert typed_text(text) == text
    assert typed_text(None) is None and typed_text("") == ""
