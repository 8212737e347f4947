"""Stream filters in translated streams and whole answers (translate/, filters.py).

- With the loop guard and tool repair on, a loop-free answer with valid calls
  comes out byte for byte as without them, for the 12 cross pairs and any
  split, and its text still takes the lane.
- A cut at any event ends the agent's stream valid, with the notice last.
- A filter's bug is noted and the filter dropped; a real loop is cut.
- Whole answers: unchanged bytes unless a filter changed something.
"""

from __future__ import annotations

import json
import random

import pytest

from agentwrap.guards import LoopGuard
from agentwrap.guards.repair import ToolRepair
from agentwrap.protocols.codec import codec
from agentwrap.protocols.filters import filter_response
from agentwrap.protocols.neutral import MessageStart, Stop, TextDelta, ThinkingDelta, ToolCallArgsDelta, ToolCallEnd, ToolCallStart, Usage
from agentwrap.protocols.neutral.summary import ToolSpec
from agentwrap.protocols.translate import StreamTranslator, TranslationContext, translate_response
from tests.protocols.support import NOTICE, PROTOCOLS, Boom, CutAt, NoOp, Rename, encode, event_cuts, run_tap, splits, validate

PAIRS = [(a, b) for a in PROTOCOLS for b in PROTOCOLS if a != b]
PAIR_IDS = [f"{a}-on-{b}" for a, b in PAIRS]
TOOLS = (ToolSpec("Bash", parameters={"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}),
         ToolSpec("Read", parameters={"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}))
NORMAL = {"anthropic_messages": {"end_turn", "tool_use"}, "openai_chat": {"stop", "tool_calls"}, "openai_responses": {"completed"}, "gemini": {"STOP"}}


class Recorder(NoOp):
    """Sees every event (declines lane runs) and records them."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list = []

    def feed(self, event):
        self.events.append(event)
        return [event]

    def lane_text(self, literals):
        return False


def ctx(agent: str, backend: str) -> TranslationContext:
    return TranslationContext(agent, backend, "agent-model", "backend-model", True, created=1760000000, id_hint="t1")


def guards(agent: str) -> list:
    return [LoopGuard(), ToolRepair(TOOLS, agent, id_seed="t1")]


def translate(agent: str, backend: str, data: bytes, cuts: list[int], filters: list) -> tuple[bytes, StreamTranslator]:
    translator = StreamTranslator(ctx(agent, backend), filters)
    out, begin = [], 0
    for cut in [*cuts, len(data)]:
        out.append(translator.feed(data[begin:cut]))
        begin = cut
        if translator.done:
            break
    out.append(translator.finish())
    return b"".join(out), translator


def words(n: int) -> list[str]:
    return [f"w{i} é\"\\\n{chr(0x1F600)} " if i % 7 == 0 else f"w{i} " for i in range(n)]


ANSWERS = {
    "long_text": [MessageStart("up_1", "m"), Usage(10, 0), *(TextDelta(w) for w in words(200)), Stop("end_turn"), Usage(0, 200)],
    "tools": [MessageStart("up_2", "m"), Usage(10, 0), ThinkingDelta("plan "), ThinkingDelta("it"),
              ThinkingDelta("", {"signature": "c2ln", "thought_signature": "c2ln", "encrypted_content": "enc"}),
              *(TextDelta(w) for w in words(30)), TextDelta("Run `ls` [now] <b>"), *(TextDelta(w) for w in words(20)),
              ToolCallStart(0, "call_a", "Bash"), ToolCallArgsDelta(0, '{"command":'), ToolCallArgsDelta(0, '"ls -la"}'), ToolCallEnd(0),
              ToolCallStart(1, "call_b", "Read"), ToolCallArgsDelta(1, '{"file_path":"a.py"}'), ToolCallEnd(1),
              Stop("tool_use"), Usage(0, 50)],
}


@pytest.mark.parametrize(("agent", "backend"), PAIRS, ids=PAIR_IDS)
def test_guards_on_loop_free_answers_with_valid_calls_change_no_byte(agent: str, backend: str) -> None:
    rng = random.Random(f"{agent}{backend}")
    for name, answer in ANSWERS.items():
        data = encode(backend, answer)
        for cuts in ([], splits(data, rng, 30), list(range(1, len(data), 61))):
            plain, _ = translate(agent, backend, data, cuts, [])
            guarded, translator = translate(agent, backend, data, cuts, guards(agent))
            assert guarded == plain, (name, cuts[:4])
            assert not translator.notes
            if name == "long_text":
                assert translator.lane_events > 0, (name, cuts[:4])
        validate(agent, plain, strict_json=True)


@pytest.mark.parametrize(("agent", "backend"), PAIRS, ids=PAIR_IDS)
def test_the_lane_is_taken_with_the_loop_guard_on(agent: str, backend: str) -> None:
    data = encode(backend, ANSWERS["long_text"])
    _, bare = translate(agent, backend, data, [], [])
    _, guarded = translate(agent, backend, data, [], [LoopGuard()])
    assert guarded.lane_events == bare.lane_events > 150


@pytest.mark.parametrize(("agent", "backend"), PAIRS, ids=PAIR_IDS)
def test_a_cut_at_every_event_ends_the_agents_stream_valid(agent: str, backend: str) -> None:
    data = encode(backend, ANSWERS["tools"])
    recorder = Recorder()
    translate(agent, backend, data, [], [recorder])
    stop = next(n for n, e in enumerate(recorder.events) if isinstance(e, Stop))
    rng = random.Random(agent + backend)
    for k in sorted({*range(0, len(recorder.events), 3), stop, min(stop + 1, len(recorder.events) - 1)}):
        out, translator = translate(agent, backend, data, splits(data, rng, 8), [CutAt(k)])
        assert translator.done
        turn = validate(agent, out)
        if k <= stop:
            assert turn.text.endswith(NOTICE.strip("\n")) and turn.stop in NORMAL[agent], (k, turn)
        else:  # the stop has been given to the encoder: nothing may follow it
            assert NOTICE.strip("\n") not in turn.text
        assert [n.action for n in translator.notes] == ["cut"]


def test_a_rename_in_a_translated_stream() -> None:
    data = encode("openai_chat", ANSWERS["tools"])
    out, translator = translate("anthropic_messages", "openai_chat", data, [], [Rename("Bash", "Shell")])
    assert [name for _, name, _ in validate("anthropic_messages", out, strict_json=True).tools] == ["Shell", "Read"]


def test_a_failing_filter_is_dropped_and_noted() -> None:
    data = encode("openai_chat", ANSWERS["long_text"])
    plain, _ = translate("anthropic_messages", "openai_chat", data, [], [])
    for where in ("feed", "lane_text"):
        out, translator = translate("anthropic_messages", "openai_chat", data, list(range(1, len(data), 50)), [Boom(3, where), LoopGuard()])
        assert out == translate("anthropic_messages", "openai_chat", data, list(range(1, len(data), 50)), [])[0]
        assert [(n.guard, n.action) for n in translator.notes] == [("boom", "error")]


LOOP = "I will check the configuration file again to be sure. "


def looping(protocol: str) -> bytes:
    return encode(protocol, [MessageStart("up_1", "m"), Usage(10, 0), *(TextDelta(w) for w in words(30)),
                             *(TextDelta(piece) for _ in range(200) for piece in (LOOP[:20], LOOP[20:])), Stop("max_tokens"), Usage(0, 9000)])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_real_loop_is_cut_on_both_paths(protocol: str) -> None:
    data = looping(protocol)
    other = "openai_chat" if protocol != "openai_chat" else "anthropic_messages"
    for cuts in ([], list(range(1, len(data), 333)), event_cuts(data)):
        tap_out, tap = run_tap(protocol, data, cuts, [LoopGuard(), ToolRepair(TOOLS, protocol)])
        tr_out, translator = translate(other, protocol, data, cuts, [LoopGuard(), ToolRepair(TOOLS, other)])
        for agent, out, pipe in ((protocol, tap_out, tap), (other, tr_out, translator)):
            turn = validate(agent, out, strict_json=True)
            assert "repetition loop" in turn.text.rsplit("\n\n", 1)[-1] and turn.stop in NORMAL[agent]
            assert turn.text.count(LOOP) < 40  # cut long before the 200 copies
            assert [n.action for n in pipe.notes] == ["cut"] and pipe.done


# -- whole answers ---------------------------------------------------------------------------


def whole(protocol: str, events: list) -> bytes:
    return json.dumps(codec(protocol).encode_response(events, "m", ("resp_" if protocol == "openai_responses" else "") + "up1", created=5)).encode()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_whole_answer_keeps_its_bytes_unless_a_filter_changes_it(protocol: str) -> None:
    body = whole(protocol, ANSWERS["tools"])
    notes: list = []
    assert filter_response(protocol, body, guards(protocol), notes=notes) == body and not notes
    renamed = filter_response(protocol, body, [Rename("Bash", "Shell")], notes=notes)
    assert renamed != body and b'"Shell"' in renamed and b'"Bash"' not in renamed
    assert [n.action for n in notes] == ["renamed"]
    assert filter_response(protocol, b"not json", guards(protocol)) == b"not json"
    cut = json.loads(filter_response(protocol, body, [CutAt(5)]))
    assert NOTICE.strip() in json.dumps(cut, ensure_ascii=False)


def test_a_translated_whole_answer_runs_the_filters() -> None:
    broken = ANSWERS["tools"][:-5] + [ToolCallStart(1, "call_b", "read"), ToolCallArgsDelta(1, "{'file_path': 'a.py',}"), ToolCallEnd(1), Stop("tool_use"), Usage(0, 5)]
    body = whole("openai_chat", broken)
    notes: list = []
    context = TranslationContext("anthropic_messages", "openai_chat", "agent-model", "backend-model", False, id_hint="t1")
    reply = translate_response(context, 200, body, [], guards("anthropic_messages"), notes=notes)
    assert reply.status == 200
    calls = [(b["name"], b["input"]) for b in json.loads(reply.body)["content"] if b["type"] == "tool_use"]
    assert calls == [("Bash", {"command": "ls -la"}), ("Read", {"file_path": "a.py"})]
    assert "repaired" in [n.action for n in notes]
    assert translate_response(context, 200, body, []).body != reply.body
