"""Compact storage: a long session's bundle grows with its content, not with its square."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from agentwrap.capture.reader import read_bundle
from agentwrap.capture.recorder import Recorder
from tests.capture.test_capture_shapes import claude_code_bodies, dumps, record_session, synthetic_bodies, unique_content, words

MAX_RATIO = 1.3


@pytest.mark.parametrize("shape", [synthetic_bodies, claude_code_bodies], ids=["one_2kb_message_per_turn", "claude_code_shape"])
def test_100_turn_session_within_1_3x_unique_content(tmp_path: Path, shape) -> None:
    bodies = list(shape(100))
    path = tmp_path / "run.cbor"
    record_session(path, bodies)
    bundle = read_bundle(path)
    response_bytes = sum(len(ex.response_body) for ex in bundle.exchanges)
    unique = unique_content(bodies, response_bytes, len(bodies))
    size = path.stat().st_size
    naive = 2 * sum(map(len, bodies)) + response_bytes
    assert size <= MAX_RATIO * unique, (size, unique, size / unique)
    assert naive / size > 20  # the quadratic growth is gone
    assert [ex.request.body.bytes for ex in bundle.exchanges] == bodies


def _growing(path: Path, make_body) -> tuple[int, bytes]:
    rng = random.Random(3)
    history: list = []
    with Recorder(str(path), {}, []) as rec:
        for _ in range(60):
            history.append(words(rng, 2000))
            body = make_body(history)
            rec.end(rec.exchange("POST", "/v1/x", [], body))
    return sum(len(h.encode()) for h in history), body


@pytest.mark.parametrize(
    "make_body",
    [
        # OpenAI Responses (Codex): `input` items, instructions resent each turn
        lambda h: dumps({"model": "gpt-5", "instructions": "I" * 20000,
                         "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": t}]} for t in h]}),
        # Gemini Code Assist wraps the generateContent body in `request`
        lambda h: dumps({"model": "gemini-2.5-pro", "project": "p",
                         "request": {"contents": [{"role": "user", "parts": [{"text": t}]} for t in h],
                                     "systemInstruction": {"parts": [{"text": "S" * 20000}]}}}),
        # a client that pretty-prints its JSON: not byte-exact, still deduplicated
        lambda h: json.dumps({"model": "m", "messages": [{"role": "user", "content": t} for t in h]}, indent=1).encode(),
    ],
    ids=["responses", "gemini_code_assist", "pretty_json"],
)
def test_other_shapes_are_deduplicated(tmp_path: Path, make_body) -> None:
    path = tmp_path / "run.cbor"
    unique, last = _growing(path, make_body)
    assert path.stat().st_size <= MAX_RATIO * (unique + 20000)  # + the resent instructions, once
    got = read_bundle(path).exchanges[-1].request.body
    assert got.json == json.loads(last)
    assert got.bytes == last if got.exact else json.loads(got.bytes) == json.loads(last)
