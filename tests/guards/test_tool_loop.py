"""The tool-call loop guard on real request shapes of each agent protocol."""

from __future__ import annotations

import json

import pytest

from agentwrap.guards.tool_loop import (
    DEFAULT_MAX_REPEATS,
    ToolLoopGuard,
    ToolLoopVerdict,
    answer_events,
    loop_run,
)
from agentwrap.protocols import codec as wire
from agentwrap.protocols.neutral import Stop, TextDelta, ToolCallStart
from agentwrap.protocols.sse import SseParser
from tests.guards.sessions import AGENTS, Agent, Call, claude_code, codex, codex_code_mode, gemini_cli, shell_call

N = DEFAULT_MAX_REPEATS
GUARD = ToolLoopGuard()


def verdict(agent: Agent, steps, tail=None, guard: ToolLoopGuard = GUARD) -> ToolLoopVerdict:
    return guard.decide(agent.decode(agent.body(steps, tail)))


def same(agent: Agent, times: int, result: str = "grep: pattern not found") -> list[list[Call]]:
    return [[shell_call(agent, "grep -rn needle src", result)] for _ in range(times)]


# -- identical calls, identical results ------------------------------------------------------


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_identical_calls_pass_then_steer_then_answer(agent: Agent) -> None:
    for times in range(N):
        v = verdict(agent, same(agent, times))
        assert v == ToolLoopVerdict("pass", times, agent.tool if times else "")
    steer = verdict(agent, same(agent, N))
    assert steer.action == "steer" and steer.repeats == N and steer.tool == agent.tool
    assert steer.note == (
        f"agentwrap: you have called {agent.tool} with the same arguments {N} times in a row and got the same "
        "result each time; do not call it again with these arguments; change approach or answer the user."
    )
    answer = verdict(agent, same(agent, N + 1))
    assert answer.action == "answer" and answer.repeats == N + 1 and answer.tool == agent.tool
    assert answer.note.startswith("agentwrap stopped a tool-call loop") and f"called {agent.tool} with the same arguments {N + 1} times" in answer.note


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_verdict_is_stateless(agent: Agent) -> None:
    body = agent.body(same(agent, N))
    first = GUARD.decide(agent.decode(body))
    again = [GUARD.decide(agent.decode(body)) for _ in range(3)]
    assert all(v == first for v in again) and first.action == "steer"


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_only_the_run_at_the_end_counts(agent: Agent) -> None:
    other = [shell_call(agent, "ls", "src\ntests")]
    steps = same(agent, 2) + [other] + same(agent, N - 1)
    assert verdict(agent, steps) == ToolLoopVerdict("pass", N - 1, agent.tool)
    assert verdict(agent, steps + same(agent, 1)).action == "steer"


# -- what is not a loop --------------------------------------------------------------------------


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_changing_results_never_count(agent: Agent) -> None:
    steps = [[shell_call(agent, "cat progress.log", f"line {i} of the build log")] for i in range(N + 3)]
    assert verdict(agent, steps) == ToolLoopVerdict("pass", 1, agent.tool)


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_changing_arguments_never_count(agent: Agent) -> None:
    steps = [[shell_call(agent, f"sed -n {i},{i + 10}p big.txt", "no such line")] for i in range(N + 3)]
    assert verdict(agent, steps) == ToolLoopVerdict("pass", 1, agent.tool)


# Chat and Responses tool outputs carry no error flag.
@pytest.mark.parametrize("agent", [a for a in AGENTS if a.protocol in ("anthropic_messages", "gemini")], ids=lambda a: a.name)
def test_error_flag_is_part_of_the_result(agent: Agent) -> None:
    ok = shell_call(agent, "make", "failed")
    failed = Call(ok.name, ok.args, ok.result, error=True)
    steps = [[ok]] * (N - 1) + [[failed]]
    assert verdict(agent, steps) == ToolLoopVerdict("pass", 1, agent.tool)


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_different_tools_with_the_same_arguments_differ(agent: Agent) -> None:
    call = shell_call(agent, "x", "same")
    steps = [[call]] * (N - 1) + [[Call("other_tool", call.args, call.result)]]
    assert verdict(agent, steps).repeats == 1


# -- volatile output and argument spelling ----------------------------------------------------


VOLATILE_RESULTS = [
    "Chunk ID: e99b75\nWall time: 0.0013 seconds\nProcess exited with code 1\nOutput:\nFAILED tests/test_a.py::test_x",
    "\x1b[31mFAILED\x1b[0m tests/test_a.py::test_x - 1 failed in 0.42s at 2026-11-26T10:00:01Z",
    "Output: build failed\nProcess Group PGID: 7146\nrun 550e8400-e29b-41d4-a716-446655440000 in /tmp/tmpk2x9_a8",
    "build failed: object at 0x7f3a2b1c9d90 (took 45ms, pid 4242, 3f786850e387550fdab836ed7e6dc881de23001b)",
]


def _drift(text: str, i: int) -> str:
    """The same output from another run: other clock, durations, ids, PIDs, temp dir."""
    return (
        text.replace("e99b75", f"a{i}c{i}f0")
        .replace("0.0013 seconds", f"0.00{i}7 seconds")
        .replace("0.42s", f"0.{i}9s")
        .replace("10:00:01Z", f"10:0{i}:3{i}Z")
        .replace("7146", f"71{i}9")
        .replace("550e8400", f"550e84{i}0")
        .replace("tmpk2x9_a8", f"tmp{i}q8z_b")
        .replace("0x7f3a2b1c9d90", f"0x7f3a2b{i}c9d90")
        .replace("45ms", f"{i}5ms")
        .replace("4242", f"42{i}2")
        .replace("3f786850e", f"3f78{i}850e")
        .replace("\x1b[31m", "\x1b[1;31m" if i % 2 else "\x1b[31m")
    )


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
@pytest.mark.parametrize("result", VOLATILE_RESULTS, ids=range(len(VOLATILE_RESULTS)))
def test_results_differing_only_in_volatile_parts_count_as_same(agent: Agent, result: str) -> None:
    steps = [[shell_call(agent, "make test", _drift(result, i))] for i in range(N)]
    assert len({s[0].result for s in steps}) == N  # every raw result differs
    assert verdict(agent, steps).action == "steer"


@pytest.mark.parametrize("agent", [a for a in AGENTS if a.protocol != "anthropic_messages"], ids=lambda a: a.name)
def test_argument_key_order_and_spacing_do_not_matter(agent: Agent) -> None:
    key = "cmd" if agent.name.startswith("codex") else "command"
    spellings = [
        json.dumps({key: "grep -rn needle src", "timeout": 10, "opts": {"a": 1, "b": [1, 2]}}),
        json.dumps({"timeout": 10, "opts": {"b": [1, 2], "a": 1}, key: "grep -rn needle src"}, indent=2),
        '{ "opts" : {"a":1,"b":[1,2]},"timeout":10 , "%s":"grep -rn needle src" }' % key,
        json.dumps({key: "grep -rn needle src", "opts": {"a": 1, "b": [1, 2]}, "timeout": 10}, separators=(",", ":")),
    ]
    steps = [[Call(agent.tool, s, "nothing found")] for s in spellings]
    assert verdict(agent, steps).action == "steer"


def test_argument_key_order_does_not_matter_for_claude_code() -> None:
    agent = AGENTS[0]
    steps = [[Call("Bash", {"command": "make", "description": "build"}, "failed")], [Call("Bash", {"description": "build", "command": "make"}, "failed")]]
    assert verdict(agent, steps).repeats == 2


@pytest.mark.parametrize("agent", [a for a in AGENTS if a.protocol != "anthropic_messages"], ids=lambda a: a.name)
def test_spacing_inside_argument_values_matters(agent: Agent) -> None:
    key = "cmd" if agent.name.startswith("codex") else "command"
    steps = [[Call(agent.tool, {key: "echo 'a  b'"}, "a  b")], [Call(agent.tool, {key: "echo 'a b'"}, "a  b")]]
    assert verdict(agent, steps).repeats == 1


# -- parallel calls -------------------------------------------------------------------------------


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_parallel_calls_compare_as_a_multiset(agent: Agent) -> None:
    read = shell_call(agent, "cat a.txt", "alpha")
    grep = Call("grep_tool", {"pattern": "x"}, "no match")
    steps = [[read, grep] if i % 2 else [grep, read] for i in range(N)]
    v = verdict(agent, steps)
    assert v.action == "steer" and v.repeats == N
    assert v.tool in (f"{agent.tool} and grep_tool", f"grep_tool and {agent.tool}")
    assert verdict(agent, steps + [[read, grep]]).action == "answer"


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_parallel_calls_with_results_swapped_differ(agent: Agent) -> None:
    a = shell_call(agent, "cat a.txt", "alpha")
    b = shell_call(agent, "cat b.txt", "beta")
    swapped = [Call(a.name, a.args, b.result), Call(b.name, b.args, a.result)]
    assert verdict(agent, [[a, b], [a, b], swapped]).repeats == 1


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_a_subset_of_parallel_calls_is_another_step(agent: Agent) -> None:
    a = shell_call(agent, "cat a.txt", "alpha")
    b = shell_call(agent, "cat b.txt", "beta")
    assert verdict(agent, [[a, b]] * (N - 1) + [[a]]).repeats == 1
    assert verdict(agent, [[a]] * (N - 1) + [[a, a]]).repeats == 1


# -- the newest user message resets ----------------------------------------------------------------


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_a_new_user_message_resets_the_count(agent: Agent) -> None:
    looping = same(agent, N + 2)
    body = agent.body(looping, agent.user_turn("try again, the file is there now"))
    assert GUARD.decide(agent.decode(body)) == ToolLoopVerdict("pass", 0, "")
    # ...and the steps after it count from 1.
    tail = agent.user_turn("try again")
    later = agent.body(looping)  # the same history, then the user's turn, then two more of the same step
    extra = agent.body(same(agent, 2))
    key = {"anthropic_messages": "messages", "openai_chat": "messages", "openai_responses": "input", "gemini": "contents"}[agent.protocol]
    prefix = len(agent.body([])[key])
    later[key] = later[key] + tail + extra[key][prefix:]
    assert GUARD.decide(agent.decode(later)) == ToolLoopVerdict("pass", 2, agent.tool)


def test_user_text_beside_tool_results_resets_but_system_reminders_do_not() -> None:
    agent = AGENTS[0]  # Claude Code puts both kinds of text after tool_result blocks
    body = claude_code(same(agent, N))
    last = body["messages"][-1]["content"]
    reminder = {"type": "text", "text": "<system-reminder>\nThe TodoWrite tool hasn't been used recently.\n</system-reminder>"}
    last.append(reminder)
    assert GUARD.decide(agent.decode(body)).action == "steer"
    last.append({"type": "text", "text": "stop grepping, the needle is in lib/"})
    assert GUARD.decide(agent.decode(body)) == ToolLoopVerdict("pass", 0, "")


def test_codex_user_message_after_tool_outputs_resets() -> None:
    agent = AGENTS[1]
    tail = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "look in lib/ instead"}]}]
    assert verdict(agent, same(agent, N + 1), tail).repeats == 0


def test_the_user_prompt_before_the_steps_is_not_a_reset() -> None:
    agent = AGENTS[0]
    body = claude_code(same(agent, N))
    assert [m["role"] for m in body["messages"][:2]] == ["user", "system"]  # as Claude Code sends them
    assert GUARD.decide(agent.decode(body)).repeats == N


# -- calls without results ----------------------------------------------------------------------------


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_a_call_without_a_result_ends_the_run(agent: Agent) -> None:
    body = agent.body(same(agent, N + 1))
    if agent.protocol == "anthropic_messages":
        body["messages"].pop()  # the last tool_result never came
    elif agent.protocol == "openai_responses":
        body["input"].pop()
    elif agent.protocol == "gemini":
        body["contents"].pop()
    else:
        body["messages"].pop()
    assert GUARD.decide(agent.decode(body)) == ToolLoopVerdict("pass", 0, "")


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_a_parallel_call_missing_its_result_ends_the_run(agent: Agent) -> None:
    a = shell_call(agent, "cat a.txt", "alpha")
    b = shell_call(agent, "cat b.txt", "beta")
    body = agent.body([[a, b]] * (N + 1))
    if agent.protocol == "anthropic_messages":
        body["messages"][-1]["content"].pop()
    elif agent.protocol == "openai_responses":
        body["input"].pop()
    elif agent.protocol == "gemini":
        body["contents"][-1]["parts"].pop()
    else:
        body["messages"].pop()
    assert GUARD.decide(agent.decode(body)).repeats == 0


def test_calls_without_ids_pair_by_position() -> None:
    # Some OpenAI-compatible servers send no call ids; the agent echoes them empty.
    agent = AGENTS[3]
    body = agent.body(same(agent, N))
    for m in body["messages"]:
        for call in m.get("tool_calls") or []:
            call["id"] = ""
        if m["role"] == "tool":
            m["tool_call_id"] = ""
    assert GUARD.decide(agent.decode(body)).action == "steer"


def test_gemini_responses_without_ids_pair_by_name() -> None:
    agent = AGENTS[2]
    body = gemini_cli(same(agent, N))
    for content in body["contents"]:
        for part in content["parts"]:
            for key in ("functionCall", "functionResponse"):
                if key in part:
                    part[key].pop("id")
    assert GUARD.decide(agent.decode(body)).action == "steer"


# -- custom (freeform) tools ------------------------------------------------------------------------------


CODE_MODE = Agent("codex-code-mode", "openai_responses", codex_code_mode, "exec")


def _exec(source: str, result: str = "Script completed\nWall time 0.1 seconds\nOutput:\nnot found") -> Call:
    return Call("exec", source, result, custom=True)


def test_codex_code_mode_exec_loop() -> None:
    source = 'const r = await tools.exec_command({cmd: "grep -rn needle src"});\ntext(r.output);\n'
    steps = [[_exec(source, f"Script completed\nWall time 0.{i} seconds\nOutput:\nnot found")] for i in range(1, N + 2)]
    assert verdict(CODE_MODE, steps[: N - 1]) == ToolLoopVerdict("pass", N - 1, "exec")
    steer = verdict(CODE_MODE, steps[:N])
    assert (steer.action, steer.repeats, steer.tool) == ("steer", N, "exec")
    assert verdict(CODE_MODE, steps).action == "answer"


def test_custom_input_whitespace_is_normalised_but_text_is_not() -> None:
    spellings = [
        'const r = await tools.exec_command({cmd: "ls"});\ntext(r.output);\n',
        'const r = await tools.exec_command({cmd: "ls"});  text(r.output);',
        '  const r = await tools.exec_command({cmd: "ls"});\n\n\ttext(r.output);',
        'const r = await tools.exec_command({cmd: "ls"}); text(r.output);\n',
    ]
    assert verdict(CODE_MODE, [[_exec(s)] for s in spellings]).action == "steer"
    changed = spellings[:3] + ['const r = await tools.exec_command({cmd: "ls -a"}); text(r.output);']
    assert verdict(CODE_MODE, [[_exec(s)] for s in changed]).repeats == 1


def test_codex_classic_apply_patch_custom_tool() -> None:
    patch = "*** Begin Patch\n*** Update File: a.py\n@@\n-x = 1\n+x = 2\n*** End Patch\n"
    call = Call("apply_patch", patch, "Failed to find expected lines in a.py", custom=True)
    assert verdict(AGENTS[1], [[call]] * N).action == "steer"
    as_function = Call("apply_patch", {"input": patch}, call.result)
    assert verdict(AGENTS[1], [[call]] * (N - 1) + [[as_function]]).repeats == 1  # a custom call is not a function call


def test_mixed_function_and_custom_calls_in_parallel() -> None:
    agent = AGENTS[1]
    step = [shell_call(agent, "ls", "a.py"), Call("apply_patch", "*** Begin Patch\n*** End Patch\n", "empty patch", custom=True)]
    v = verdict(agent, [step, list(reversed(step))] * (N // 2))
    assert v.repeats == N and v.tool in ("exec_command and apply_patch", "apply_patch and exec_command")


# -- N is configurable ----------------------------------------------------------------------------------


@pytest.mark.parametrize("max_repeats", [2, 3, 6])
@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_max_repeats_is_configurable(agent: Agent, max_repeats: int) -> None:
    guard = ToolLoopGuard(max_repeats=max_repeats)
    assert verdict(agent, same(agent, max_repeats - 1), guard=guard).action == "pass"
    assert verdict(agent, same(agent, max_repeats), guard=guard).action == "steer"
    assert verdict(agent, same(agent, max_repeats + 1), guard=guard).action == "answer"
    assert verdict(agent, same(agent, max_repeats + 4), guard=guard).repeats == max_repeats + 4


@pytest.mark.parametrize("bad", [1, 0, -3])
def test_max_repeats_below_two_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        ToolLoopGuard(max_repeats=bad)


# -- the answer and the record ------------------------------------------------------------------------------


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_answer_encodes_as_a_plain_assistant_message_in_the_agent_protocol(agent: Agent) -> None:
    v = verdict(agent, same(agent, N + 1))
    codec = wire.codec(agent.protocol)
    events = answer_events(v.note, "model-x")
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta(v.note)]
    assert events[-1] == Stop("end_turn") and not any(isinstance(e, ToolCallStart) for e in events)
    encoder = codec.StreamEncoder("model-x", "msg_agentwrap_tool_loop")
    stream = b"".join(encoder.feed(e) for e in events) + encoder.finish()
    parser = SseParser()
    decoder = codec.StreamDecoder()
    decoded = [n for sse in parser.feed(stream) + parser.finish() for n in decoder.feed(sse)] + decoder.finish()
    assert "".join(e.text for e in decoded if isinstance(e, TextDelta)) == v.note
    assert not any(isinstance(e, ToolCallStart) for e in decoded)
    assert [e.reason for e in decoded if isinstance(e, Stop)] == ["end_turn"]
    whole = json.dumps(codec.encode_response(events, "model-x", "msg_agentwrap_tool_loop"), ensure_ascii=False)
    assert json.dumps(v.note, ensure_ascii=False)[1:-1] in whole


def test_guard_note_for_capture() -> None:
    agent = AGENTS[0]
    v = verdict(agent, same(agent, N))
    assert v.guard_note(N).as_item() == {"guard": "tool_loop", "action": "steer", "tool": "Bash", "repeats": N, "max_repeats": N}


def test_loop_run_on_no_messages() -> None:
    assert loop_run([]) == (0, ())


def test_assistant_text_and_thinking_beside_the_calls_are_ignored() -> None:
    agent = AGENTS[0]
    body = claude_code(same(agent, N))
    for k, m in enumerate(body["messages"]):
        if m["role"] == "assistant":
            m["content"][:0] = [
                {"type": "thinking", "thinking": f"attempt {k}", "signature": f"sig{k}"},
                {"type": "text", "text": f"Let me try again ({k})."},
            ]
    assert GUARD.decide(agent.decode(body)).action == "steer"


def test_gemini_cli_volatile_ids_and_thought_signatures_do_not_matter() -> None:
    agent = AGENTS[2]
    body = gemini_cli(same(agent, N))
    for k, content in enumerate(body["contents"][1:]):
        for part in content["parts"]:
            if "thoughtSignature" in part:
                part["thoughtSignature"] = f"sig-{k}"
    assert GUARD.decide(agent.decode(body)).action == "steer"
