"""append_user_note: a note after the newest tool results, in each wire protocol."""

from __future__ import annotations

import copy

import pytest

from agentwrap.errors import RequestError
from agentwrap.guards.tool_loop import DEFAULT_MAX_REPEATS, ToolLoopGuard
from agentwrap.protocols import codec as wire
from agentwrap.protocols.notes import append_user_note
from agentwrap.protocols.neutral.request import TextPart, ToolResultPart
from tests.guards.sessions import AGENTS, Agent, Call, codex_code_mode, gemini_cli, shell_call

NOTE = "agentwrap: you have called X with the same arguments 4 times in a row; change approach."
CONVERSATION = {"anthropic_messages": "messages", "openai_chat": "messages", "openai_responses": "input", "gemini": "contents"}
ALL = AGENTS + [Agent("codex-code-mode", "openai_responses", codex_code_mode, "exec")]


def looping(agent: Agent, parallel: bool = False) -> dict:
    if agent.name == "codex-code-mode":
        step = [Call("exec", 'text("hi");', "Script completed\nOutput:\nhi", custom=True)]
    else:
        step = [shell_call(agent, "make", "failed")]
        if parallel:
            step.append(shell_call(agent, "cat log", "error: x"))
    return agent.body([step] * DEFAULT_MAX_REPEATS)


@pytest.mark.parametrize("parallel", [False, True], ids=["one call", "parallel calls"])
@pytest.mark.parametrize("agent", ALL, ids=lambda a: a.name)
def test_note_is_the_last_thing_the_model_reads(agent: Agent, parallel: bool) -> None:
    body = looping(agent, parallel)
    original = copy.deepcopy(body)
    noted = append_user_note(agent.protocol, body, NOTE)
    assert body == original  # the agent's body is not changed
    req = wire.codec(agent.protocol).decode_request(noted, agent.path)
    last = req.messages[-1]
    assert last.role == "user" and last.parts[-1] == TextPart(NOTE)
    results = [p for p in last.parts if isinstance(p, ToolResultPart)]
    assert len(results) == (2 if parallel and agent.name != "codex-code-mode" else 1)
    assert all(isinstance(p, ToolResultPart) for p in last.parts[:-1])  # the results come first, then the note
    # Everything before the note decodes as it did without it.
    before = wire.codec(agent.protocol).decode_request(copy.deepcopy(original), agent.path)
    assert req.messages[:-1] == before.messages[:-1] and last.parts[:-1] == before.messages[-1].parts
    assert (req.system, req.tools, req.extra) == (before.system, before.tools, before.extra)


@pytest.mark.parametrize("agent", ALL, ids=lambda a: a.name)
def test_only_the_conversation_changes_on_the_wire(agent: Agent) -> None:
    body = looping(agent)
    noted = append_user_note(agent.protocol, body, NOTE)
    key = CONVERSATION[agent.protocol]
    assert {k: v for k, v in noted.items() if k != key} == {k: v for k, v in body.items() if k != key}
    old, new = body[key], noted[key]
    if agent.protocol == "anthropic_messages":
        assert new[:-1] == old[:-1]
        assert new[-1] == {**old[-1], "content": old[-1]["content"] + [{"type": "text", "text": NOTE}]}
        assert new[-1]["content"][-2]["cache_control"] == {"type": "ephemeral"}  # the result keeps its cache mark
    elif agent.protocol == "openai_chat":
        assert old[-1]["role"] == "tool" and new == old + [{"role": "user", "content": NOTE}]
    elif agent.protocol == "openai_responses":
        assert old[-1]["type"] in ("function_call_output", "custom_tool_call_output")
        assert new == old + [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": NOTE}]}]
    else:
        assert "functionResponse" in old[-1]["parts"][-1]
        assert new[:-1] == old[:-1] and new[-1] == {**old[-1], "parts": old[-1]["parts"] + [{"text": NOTE}]}


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_the_guard_steers_with_the_note_and_the_next_request_is_answered(agent: Agent) -> None:
    # The integration in brief: steer adds the note to what goes upstream; the agent never
    # sees it, so its next request (one more identical step) gets the local answer.
    guard = ToolLoopGuard()
    codec = wire.codec(agent.protocol)
    step = [shell_call(agent, "make", "failed")]
    verdict = guard.decide(codec.decode_request(agent.body([step] * DEFAULT_MAX_REPEATS), agent.path))
    assert verdict.action == "steer"
    upstream = append_user_note(agent.protocol, agent.body([step] * DEFAULT_MAX_REPEATS), verdict.note)
    assert codec.decode_request(upstream, agent.path).messages[-1].parts[-1] == TextPart(verdict.note)
    nxt = guard.decide(codec.decode_request(agent.body([step] * (DEFAULT_MAX_REPEATS + 1)), agent.path))
    assert nxt.action == "answer"


# -- edge shapes ---------------------------------------------------------------------------------------


def test_anthropic_string_content_becomes_blocks() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5}
    noted = append_user_note("anthropic_messages", body, NOTE)
    assert noted["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": NOTE}]}]
    assert body["messages"][0]["content"] == "hello"


def test_anthropic_skips_claude_code_system_entries() -> None:
    body = {
        "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}]},
            {"role": "system", "content": "# Environment"},
        ]
    }
    noted = append_user_note("anthropic_messages", body, NOTE)
    assert noted["messages"][0]["content"][-1] == {"type": "text", "text": NOTE}
    assert noted["messages"][1] == {"role": "system", "content": "# Environment"}


@pytest.mark.parametrize(
    ("protocol", "body", "expected_tail"),
    [
        ("anthropic_messages", {"messages": [{"role": "assistant", "content": "hi"}]}, {"role": "user", "content": [{"type": "text", "text": NOTE}]}),
        ("anthropic_messages", {}, {"role": "user", "content": [{"type": "text", "text": NOTE}]}),
        ("openai_chat", {}, {"role": "user", "content": NOTE}),
        ("openai_responses", {}, {"type": "message", "role": "user", "content": [{"type": "input_text", "text": NOTE}]}),
        ("gemini", {"contents": [{"role": "model", "parts": [{"text": "hi"}]}]}, {"role": "user", "parts": [{"text": NOTE}]}),
        ("gemini", {}, {"role": "user", "parts": [{"text": NOTE}]}),
    ],
)
def test_a_conversation_not_ending_with_a_user_turn_gets_a_new_one(protocol: str, body: dict, expected_tail: dict) -> None:
    noted = append_user_note(protocol, body, NOTE)
    assert noted[CONVERSATION[protocol]][-1] == expected_tail


def test_responses_string_input_becomes_items() -> None:
    noted = append_user_note("openai_responses", {"input": "hello", "model": "m"}, NOTE)
    assert noted == {
        "model": "m",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": NOTE}]},
        ],
    }


def test_gemini_code_assist_envelope() -> None:
    inner = gemini_cli([[shell_call(AGENTS[2], "make", "failed")]])
    body = {"model": "gemini-3-pro-preview", "project": "p-1", "user_prompt_id": "u", "request": inner}
    original = copy.deepcopy(body)
    noted = append_user_note("gemini", body, NOTE)
    assert body == original
    assert {k: v for k, v in noted.items() if k != "request"} == {k: v for k, v in body.items() if k != "request"}
    assert noted["request"]["contents"][-1]["parts"][-1] == {"text": NOTE}
    req = wire.codec("gemini").decode_request(noted, "/v1internal:streamGenerateContent?alt=sse")
    assert req.messages[-1].parts[-1] == TextPart(NOTE)


def test_gemini_content_without_role_is_the_users() -> None:
    noted = append_user_note("gemini", {"contents": [{"parts": [{"text": "hi"}]}]}, NOTE)
    assert noted["contents"] == [{"parts": [{"text": "hi"}, {"text": NOTE}]}]


@pytest.mark.parametrize(
    ("protocol", "body"),
    [
        ("anthropic_messages", {"messages": {"role": "user"}}),
        ("anthropic_messages", {"messages": [{"role": "user", "content": 7}]}),
        ("openai_chat", {"messages": "hello"}),
        ("openai_responses", {"input": {"type": "message"}}),
        ("gemini", {"contents": {"parts": []}}),
        ("gemini", {"contents": [{"role": "user", "parts": "x"}]}),
    ],
)
def test_a_conversation_that_is_not_a_list_is_a_request_error(protocol: str, body: dict) -> None:
    with pytest.raises(RequestError, match="not a list"):
        append_user_note(protocol, body, NOTE)


def test_unknown_protocol() -> None:
    with pytest.raises(ValueError, match="unknown protocol 'ollama'"):
        append_user_note("ollama", {}, NOTE)
