"""Bodies stored as byte ranges of earlier bodies (capture/delta.py): any sequence of bodies
reads back exactly as `Redactor.bytes` of each, no stored byte string holds a secret, and a
resent conversation costs its new bytes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentwrap.capture.delta import BodyDeltas, DeltaBodies, common_prefix, common_suffix
from agentwrap.capture.reader import read_bundle
from agentwrap.capture.recorder import Recorder
from agentwrap.capture.redact import Redactor
from agentwrap.errors import BundleFormatError
from tests.capture.test_capture_shapes import claude_code_bodies, dumps, words

SECRETS = ("sk-live-ABCDEFGH12345", "aw-sekrit-99", "ABCDEFGH")  # the last is inside the first


def _store_all(bodies: list[bytes], secrets=SECRETS) -> tuple[list, list[bytes]]:
    """Encode `bodies` in order, read them back as a reader would: (stored forms, bytes)."""
    enc = BodyDeltas(Redactor(secrets))
    dec = DeltaBodies()
    stored, out = [], []
    for body in bodies:
        s = enc.encode(body)
        stored.append(s)
        if isinstance(s, bytes):
            out.append(s)
        else:
            dec.add(s["id"], s["parts"])
            out.append(dec.bytes(s["id"]))
    return stored, out


def _literals(stored: list) -> list[bytes]:
    return [s if isinstance(s, bytes) else p for s in stored for p in ([s] if isinstance(s, bytes) else s["parts"])
            if isinstance(p, bytes)]


# Small alphabets make common prefixes, suffixes and partial secrets likely.
_text = st.binary(min_size=0, max_size=300).map(lambda b: bytes(c % 5 + 0x41 for c in b))
_edit = st.one_of(
    st.tuples(st.just("append"), _text),
    st.tuples(st.just("insert"), st.floats(0, 1), _text),
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(0, 400)),
    st.tuples(st.just("secret"), st.floats(0, 1), st.sampled_from(SECRETS + ("sk-live-ABC", "[REDACTED]", "ABCDEFGH12345"))),
    st.tuples(st.just("again")),
    st.tuples(st.just("fresh"), st.binary(min_size=0, max_size=900)),
)


def _apply(body: bytes, edit: tuple) -> bytes:
    kind = edit[0]
    at = int(edit[1] * len(body)) if kind in ("insert", "delete", "secret") else 0
    if kind == "append":
        return body + edit[1]
    if kind == "insert":
        return body[:at] + edit[2] + body[at:]
    if kind == "delete":
        return body[:at] + body[at + edit[2]:]
    if kind == "secret":
        return body[:at] + edit[2].encode() + body[at:]
    if kind == "fresh":
        return edit[1]
    return body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=1500), st.lists(_edit, min_size=1, max_size=25))
def test_any_edits_read_back_redacted_exactly(seed: bytes, edits: list) -> None:
    bodies, body = [], seed
    for edit in edits:
        body = _apply(body, edit)
        bodies.append(body)
    stored, got = _store_all(bodies)
    redactor = Redactor(SECRETS)
    assert got == [redactor.bytes(b) for b in bodies]
    for lit in _literals(stored):
        assert not any(s.encode() in lit for s in SECRETS)


def test_every_split_of_a_secret_across_the_kept_ranges() -> None:
    """A secret placed at every offset around the end of the shared prefix and the start of the
    shared suffix of a growing conversation is redacted."""
    secret = SECRETS[0]
    head, tail = b'{"messages":["' + b"h" * 700, b'"],"tools":"' + b"t" * 700 + b'"}'
    first = head + b"x" * 50 + tail
    for cut in range(len(head) - 30, len(head) + 60, 3):
        for where in ("prefix", "suffix"):
            if where == "prefix":
                second = first[:cut] + secret.encode() + first[cut:]
            else:
                at = len(first) - len(tail) - 40 + (cut - len(head))
                second = first[:at] + secret.encode() + first[at:]
            stored, got = _store_all([first, second, second + b" "])
            assert got[1:] == [second.replace(secret.encode(), b"[REDACTED]"),
                               (second + b" ").replace(secret.encode(), b"[REDACTED]")], (cut, where)
            assert not any(secret.encode() in lit for lit in _literals(stored))


def test_a_growing_conversation_costs_its_new_bytes() -> None:
    bodies = list(claude_code_bodies(20, prefix_chars=20_000))
    stored, got = _store_all(bodies)
    assert got == bodies
    new = sum(len(lit) for lit in _literals(stored[1:]))
    # each turn adds ~2.2 KB of messages and moves `cache_control`; nothing else is stored again
    assert new < 20 * 3000, new
    assert all(isinstance(s, dict) and len(s["parts"]) <= 3 for s in stored[1:])


def test_a_new_conversation_reuses_the_long_strings_of_an_earlier_one() -> None:
    """A subagent: another system prompt, a different subset of the same tools, new messages."""
    rng = random.Random(4)
    tools = [{"name": f"T{i}", "description": words(rng, 1500)} for i in range(12)]
    main = dumps({"model": "m", "messages": [{"role": "user", "content": words(rng, 400)}], "system": words(rng, 3000),
                  "tools": tools})
    sub = dumps({"model": "m", "messages": [{"role": "user", "content": words(rng, 400)}], "system": words(rng, 1000),
                 "tools": tools[::2]})
    stored, got = _store_all([main, sub])
    assert got == [main, sub]
    sub_new = sum(len(p) for p in stored[1]["parts"] if isinstance(p, bytes))
    assert sub_new < len(sub) - 6 * 1500, (sub_new, len(sub))  # the six tool descriptions are references


def test_other_conversations_do_not_push_a_long_one_out() -> None:
    """Twenty side calls, and a subagent's turns, between two turns of the main conversation
    (short messages: no long string to find again)."""
    rng = random.Random(9)
    history = [words(rng, 150) for _ in range(200)]
    main = [dumps({"model": "m", "messages": history}), dumps({"model": "m", "messages": history + ["next turn " * 100]})]
    others = [dumps({"model": "h", "messages": [words(rng, 900)]}) for _ in range(20)]
    sub = [words(rng, 150) for _ in range(30)]
    for _ in range(3):
        sub.append(words(rng, 150))
        others.append(dumps({"model": "s", "messages": sub}))
    stored, got = _store_all([main[0], *others, main[1]])
    assert got == [main[0], *others, main[1]]
    assert sum(len(p) for p in stored[-1]["parts"] if isinstance(p, bytes)) < 1100
    assert sum(len(p) for p in stored[-1 - 1]["parts"] if isinstance(p, bytes)) < 1100  # the subagent's last turn


@given(st.binary(max_size=64), st.binary(max_size=64), st.binary(max_size=9000), st.integers(0, 9000))
def test_common_prefix_and_suffix(a_tail: bytes, b_tail: bytes, shared: bytes, limit: int) -> None:
    a, b = shared + a_tail, shared + b_tail
    p = common_prefix(a, b)
    assert a[:p] == b[:p] and (p == min(len(a), len(b)) or a[p] != b[p])
    a, b = a_tail + shared, b_tail + shared
    s = common_suffix(a, b, limit)
    n = min(len(a), len(b), limit)
    assert s <= n and a[len(a) - s:] == b[len(b) - s:]
    assert s == n or a[len(a) - s - 1] != b[len(b) - s - 1]


@pytest.mark.parametrize("parts", [
    [[99, 0, 10]],  # an unknown body
    [[1, 0, 10_000]],  # past its end
    [[1, -1, 5]],
    [b"x", [1, 0]],  # not a range
    [7],
])
def test_parts_that_do_not_resolve_are_a_corrupt_item(tmp_path: Path, parts: list) -> None:
    path = tmp_path / "b.cbor"
    with Recorder(str(path), {}, []) as rec:
        rec.end(rec.exchange("POST", "/v1/messages", [], b"{" + b"a" * 600 + b"}"))
    data = path.read_bytes()
    bad = cbor2.dumps({"t": "request", "x": 2, "at": 5, "method": "POST", "target": "/", "headers": [],
                       "body": {"id": 2, "parts": parts}})
    assert read_bundle(path).exchanges[0].request.body.bytes == b"{" + b"a" * 600 + b"}"
    (tmp_path / "c.cbor").write_bytes(_without_footer(data) + bad)
    with pytest.raises(BundleFormatError, match="corrupt request item"):
        read_bundle(tmp_path / "c.cbor")


def _without_footer(data: bytes) -> bytes:
    """The bundle's bytes up to its footer item (found through the locator)."""
    return data[:int.from_bytes(data[-8:], "big")]


def test_bodies_read_back_after_json_round_trips_through_show(tmp_path: Path) -> None:
    bodies = list(claude_code_bodies(5, prefix_chars=3000))
    path = tmp_path / "b.cbor"
    with Recorder(str(path), {}, []) as rec:
        for body in bodies:
            rec.end(rec.exchange("POST", "/v1/messages", [], body))
    got = read_bundle(path).exchanges
    assert [json.dumps(e.request.body.json) for e in got] == [json.dumps(json.loads(b)) for b in bodies]
    assert all(e.request.body.is_delta for e in got) and got[0].request.body.text_field("model") == "claude-sonnet-4-5"
