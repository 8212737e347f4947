"""Replay matching: volatile fields are ignored, real differences are reported."""

from __future__ import annotations

import json

import pytest

from agentwrap.backends.replay import RecordedExchange, ReplayBackend, request_key
from agentwrap.backends.replay_match import normalise


def body(text: str, **extra) -> bytes:
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": text}], **extra}).encode()


def ex(i: int, b: bytes, chunk: bytes = b"x") -> RecordedExchange:
    return RecordedExchange(i, "POST", "/v1/messages?beta=true", b, 200, [(b"content-type", b"text/event-stream")], [chunk])


def test_volatile_fields_do_not_change_the_key():
    a = body("PGID: 7146, wall time 0.12 s, today 2026-11-26", metadata={"user_id": "u1"})
    b = body("PGID: 9, wall time 3.5 s, today 2027-01-02", metadata={"user_id": "someone-else"})
    assert request_key("POST", "/v1/messages", a) == request_key("post", "/v1/messages", b)


def test_content_changes_do():
    assert request_key("POST", "/v1/messages", body("create a file")) != request_key("POST", "/v1/messages", body("delete a file"))


def test_same_key_served_in_order_once_each():
    rb = ReplayBackend([ex(0, body("hi"), b"first"), ex(1, body("hi"), b"second")])
    assert rb.respond("POST", "/v1/messages?beta=true", body("hi")).chunks == [b"first"]
    assert rb.respond("POST", "/v1/messages?beta=true", body("hi")).chunks == [b"second"]
    assert rb.respond("POST", "/v1/messages?beta=true", body("hi")) is None
    assert "no recording of this endpoint is left" in str(rb.divergences[0])


def test_divergence_names_the_request_and_the_difference():
    rb = ReplayBackend([ex(0, body("hi")), ex(1, body("now create made.txt"))])
    assert rb.respond("POST", "/v1/messages?beta=true", body("hi")) is not None
    assert rb.respond("POST", "/v1/messages?beta=true", body("now create other.txt")) is None
    (d,) = rb.divergences
    assert d.request_number == 2
    assert "recorded exchange 2" in d.detail and "messages[0].content" in d.detail
    assert [e.index for e in rb.unused()] == [1]


# -- learned from the recording: run-varying values by their recorded kind -----------------------

CODEX_OUTPUT = "Chunk ID: {id}\nWall time: {t} seconds\nProcess exited with code 0\nOriginal token count: 3\nOutput:\n"


def responses_body(output: str, *history: str) -> bytes:
    items = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "make a file"}]}]
    for i, old in enumerate(history):
        items += [{"type": "function_call", "call_id": f"call_{i}", "name": "exec_command", "arguments": "{}"},
                  {"type": "function_call_output", "call_id": f"call_{i}", "output": old}]
    items += [{"type": "function_call", "call_id": "call_x", "name": "exec_command", "arguments": "{}"},
              {"type": "function_call_output", "call_id": "call_x", "output": output}]
    return json.dumps({"model": "gpt-5.5", "input": items, "stream": True}).encode()


def rx(i: int, b: bytes, chunk: bytes = b"x", path: str = "/v1/responses") -> RecordedExchange:
    return RecordedExchange(i, "POST", path, b, 200, [(b"content-type", b"text/event-stream")], [chunk])


@pytest.mark.parametrize(("recorded", "now"), [
    ("Chunk ID: b12345", "Chunk ID: abcdef"),  # a hex id without a digit, admitted by the recorded one's kind
    ("Chunk ID: 3fa9c1", "Chunk ID: 0b1e7d"),
    ("Wall time: 0.0012 seconds", "Wall time: 12.5 seconds"),  # a number written with more tokens
    ("session 0f8fad5b-d9cb-469f-a165-70867728950e", "session abcdefab-cdef-abcd-efab-cdefabcdefab"),
    ("Today is Thursday, December 3", "Today is Friday, January 4"),
    ("cwd /tmp/tmpk3j_x9q/work/made.txt", "cwd /tmp/pytest-of-me/work/made.txt"),
    ("home /var/folders/xy/abc_123/T/tmpqwerty", "home /var/folders/xy/abc_123/T/tmpasdfgh"),
    ("token aZ3kLm9QpR2x", "token Qm8vTy2LpZ0a"),
    ("commit 9fceb02d0ae598e95dc970b74767f19372d61af8", "commit 1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"),
])
def test_run_varying_values_match_by_the_recorded_kind(recorded, now):
    rb = ReplayBackend([ex(0, body(recorded))])
    assert rb.respond("POST", "/v1/messages?beta=true", body(now)) is not None, rb.divergences


@pytest.mark.parametrize(("recorded", "now"), [
    ("create made.txt", "create mode.txt"),  # an ordinary word
    ("Chunk ID: abc1ef", "Chunk ID: abc1e"),  # a hex id of another length
    ("cwd /tmp/abc/made.txt", "cwd /home/abc/made.txt"),  # not a temporary root
    ("saved /tmp/made.txt", "saved /tmp/mode.txt"),  # a file in /tmp, not a directory made for one run
    ("in src/tmp/abcdef/made.txt", "in src/tmp/ghijkl/made.txt"),  # a relative path is no temporary root
    ("token abcdefghij", "token klmnopqrst"),  # lower-case words are words, not ids
    ("use the deadbeef", "use the cafebabe"),  # hex without a digit on either side
    ("say hello", "say hello twice"),  # more words
])
def test_real_differences_do_not_match(recorded, now):
    rb = ReplayBackend([ex(0, body(recorded))])
    assert rb.respond("POST", "/v1/messages?beta=true", body(now)) is None
    assert "messages[0].content" in rb.divergences[0].detail


@pytest.mark.parametrize(("recorded", "now", "where"), [
    ({"max_tokens": 100}, {"max_tokens": 200}, "body.max_tokens: recorded 100, now 200"),  # numbers are exact
    ({"tools": []}, {"tools": [{"name": "t"}]}, "body.tools: 0 items recorded, 1 now"),
    ({"stream": True}, {"stream": "true"}, "body.stream: bool recorded, str now"),
    ({"tools": []}, {}, "body: tools missing now"),
])
def test_shape_must_be_the_same(recorded, now, where):
    rb = ReplayBackend([ex(0, body("hi", **recorded))])
    assert rb.respond("POST", "/v1/messages?beta=true", body("hi", **now)) is None
    assert rb.divergences[0].detail.endswith(where)


def test_a_learned_id_maps_back_in_later_requests_so_they_match_by_key():
    first = CODEX_OUTPUT.format(id="b12345", t="0.0012")
    second = CODEX_OUTPUT.format(id="77aa01", t="0.0020")
    rb = ReplayBackend([rx(0, responses_body(first), b"one"), rx(1, responses_body(second, first), b"two")])
    now_first = CODEX_OUTPUT.format(id="fedcba", t="0.0100")
    assert rb.respond("POST", "/v1/responses", responses_body(now_first)).chunks == [b"one"]
    assert rb.learned.recorded_of == {"fedcba": "b12345"}
    # the next request repeats the first output in its history: mapped back to the recorded id
    mapped = rb.learned.apply(normalise(responses_body(second, now_first)))
    assert mapped["input"][2]["output"] == first.replace("0.0012", "0.0100")
    now_second = CODEX_OUTPUT.format(id="0a0b0c", t="0.3")
    assert rb.respond("POST", "/v1/responses", responses_body(now_second, now_first)).chunks == [b"two"]
    assert rb.divergences == [] and rb.unused() == []


def test_matching_recordings_are_served_in_recorded_order_exact_keys_first():
    a = body("Chunk ID: 111aaa")
    b = body("Chunk ID: 222bbb")
    rb = ReplayBackend([ex(0, a, b"first"), ex(1, b, b"second"), ex(2, a, b"third")])
    # equal to recording 2 by key (digits masked: "#bbb"), before recording 1 that only matches by learning
    assert rb.respond("POST", "/v1/messages?beta=true", body("Chunk ID: 999bbb")).chunks == [b"second"]
    # two recordings left that match by learning: the older one first
    assert rb.respond("POST", "/v1/messages?beta=true", body("Chunk ID: cdef12")).chunks == [b"first"]
    assert rb.respond("POST", "/v1/messages?beta=true", body("Chunk ID: 777aaa")).chunks == [b"third"]
    assert rb.respond("POST", "/v1/messages?beta=true", body("Chunk ID: 777aaa")) is None


def test_the_divergence_names_the_word_that_differs():
    rb = ReplayBackend([rx(0, responses_body(CODEX_OUTPUT.format(id="b12345", t="1.0") + "made.txt"))])
    assert rb.respond("POST", "/v1/responses", responses_body(CODEX_OUTPUT.format(id="abcdef", t="2.0") + "mode.txt")) is None
    detail = rb.divergences[0].detail
    assert "body.input[2].output" in detail and '"made"' in detail and '"mode"' in detail, detail
