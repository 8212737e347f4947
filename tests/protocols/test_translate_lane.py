"""The text lane (agentwrap/protocols/lane.py): translated text deltas as bytes.

The lane is an optimisation, so one property says all: for any backend
stream, split anywhere, the agent gets byte for byte what the general path
gives. The other tests show the lane is really taken where it should be (else
the property would hold vacuously) and refused where it must be.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwrap.protocols.neutral import MessageStart, Stop, TextDelta, ThinkingDelta, ToolCallArgsDelta, ToolCallEnd, ToolCallStart, Usage
from agentwrap.protocols.sse import SseParser
from agentwrap.protocols.translate import StreamTranslator, TranslationContext
from agentwrap.protocols.codec import codec
from tests.support.grammar import VALIDATORS

PROTOCOLS = ["anthropic_messages", "openai_chat", "openai_responses", "gemini"]
PAIRS = [(a, b) for a in PROTOCOLS for b in PROTOCOLS if a != b]
LANE_BACKENDS = ["anthropic_messages", "openai_chat", "openai_responses"]


def ctx(agent: str, backend: str) -> TranslationContext:
    return TranslationContext(agent, backend, "agent-model", "backend-model", True, response_id="", created=1760000000, id_hint="t1")


def translate(agent: str, backend: str, data: bytes, cuts: list[int], lane: bool, learn_after: int = 1) -> tuple[bytes, StreamTranslator]:
    translator = StreamTranslator(ctx(agent, backend))
    translator.LANE_AFTER = learn_after if lane else 10**9
    out, begin = [], 0
    for cut in [*cuts, len(data)]:
        out.append(translator.feed(data[begin:cut]))
        begin = cut
    out.append(translator.finish())
    return b"".join(out), translator


def backend_stream(backend: str, events: list) -> bytes:
    encoder = codec(backend).StreamEncoder("backend-model", "up_123")
    return b"".join(encoder.feed(e) for e in events) + encoder.finish()


def events(data: bytes) -> list[tuple[str | None, object]]:
    """The agent's events as (name, JSON value): equal streams may escape strings differently."""
    parser = SseParser()
    return [(e.event, e.data if e.data == "[DONE]" else json.loads(e.data)) for e in parser.feed(data) + parser.finish()]


def random_cuts(rng: random.Random, size: int, n: int) -> list[int]:
    return sorted({rng.randrange(1, size) for _ in range(n)}) if size > 1 else []


# -- the property ----------------------------------------------------------------------

_word = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=5)
_text_run = st.lists(_word, min_size=1, max_size=25).map(lambda words: [TextDelta(w) for w in words])
_other = st.sampled_from([
    [ThinkingDelta("hm")],
    [ThinkingDelta("", {"signature": "c2ln", "thought_signature": "c2ln", "encrypted_content": "enc"})],
    [ToolCallStart(0, "call_a", "f"), ToolCallArgsDelta(0, '{"a":'), ToolCallArgsDelta(0, "1}"), ToolCallEnd(0)],
    [ToolCallStart(1, "call_b", "g"), ToolCallArgsDelta(1, "{}")],
    [Usage(5, 7, 1, 0)],
])
_stream = st.lists(st.one_of(_text_run, _other), min_size=1, max_size=6).map(lambda runs: [e for run in runs for e in run])
_ending = st.sampled_from([[Stop("end_turn")], [Stop("tool_use"), Usage(3, 4, 0, 0)], [Stop("max_tokens")], []])


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(PAIRS), _stream, _ending, st.integers(1, 3), st.randoms(use_true_random=False))
def test_lane_gives_the_general_paths_bytes(pair: tuple[str, str], body: list, ending: list, learn_after: int, rng: random.Random) -> None:
    agent, backend = pair
    data = backend_stream(backend, [MessageStart("up_1", "backend-model"), Usage(10, 0, 0, 0), *body, *ending])
    for n in (0, 3, 40):
        cuts = random_cuts(rng, len(data), n)
        with_lane, _ = translate(agent, backend, data, cuts, lane=True, learn_after=learn_after)
        without, _ = translate(agent, backend, data, cuts, lane=False)
        assert with_lane == without
    parser = SseParser()
    VALIDATORS[agent](parser.feed(with_lane) + parser.finish(), strict_json=False)


# -- the lane is taken ---------------------------------------------------------------------


def words(n: int) -> list[str]:
    return [f"w{i} é\"\\\n{chr(0x1F600)} " if i % 7 == 0 else f"w{i} " for i in range(n)]


@pytest.mark.parametrize(("agent", "backend"), [p for p in PAIRS if p[1] in LANE_BACKENDS])
def test_long_text_streams_take_the_lane(agent: str, backend: str) -> None:
    text = words(300)
    data = backend_stream(backend, [MessageStart("up_1", "m"), *(TextDelta(t) for t in text), Stop("end_turn"), Usage(5, 300, 0, 0)])
    rng = random.Random(7)
    for cuts in ([], random_cuts(rng, len(data), 30), list(range(97, len(data), 97))):
        out, translator = translate(agent, backend, data, cuts, lane=True, learn_after=StreamTranslator.LANE_AFTER)
        assert translator.lane_events > 250, (cuts[:3], translator.lane_events)
        assert out == translate(agent, backend, data, cuts, lane=False)[0]
        parser = SseParser()
        turn = VALIDATORS[agent](parser.feed(out) + parser.finish())
        assert turn.text == "".join(text)


def chat_chunk(content: str, n: int, **extra: object) -> bytes:
    """A Chat chunk shaped like OpenAI's own: an id, created, fingerprint and obfuscation padding
    that differ from chunk to chunk here (servers keep some of them, but none may matter)."""
    doc = {"id": f"chatcmpl-{n % 3}", "object": "chat.completion.chunk", "created": 1760000000 + n, "model": "gpt-x",
           "service_tier": "default", "system_fingerprint": f"fp_{n}",
           "choices": [{"index": 0, "delta": {"content": content}, "logprobs": None, "finish_reason": None}], **extra}
    doc["obfuscation"] = "x" * (n % 5)
    return b"data: " + json.dumps(doc, separators=(",", ":"), ensure_ascii=n % 2 == 0).encode() + b"\n\n"


def chat_stream(texts: list[str]) -> bytes:
    first = b'data: {"id":"chatcmpl-0","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
    last = (b'data: {"id":"chatcmpl-0","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
            b'data: {"id":"chatcmpl-0","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":9,"total_tokens":12}}\n\n'
            b"data: [DONE]\n\n")
    return first + b"".join(chat_chunk(t, n) for n, t in enumerate(texts)) + last


@pytest.mark.parametrize("agent", ["anthropic_messages", "openai_responses", "gemini"])
def test_chat_chunks_whose_ids_and_padding_vary_take_the_lane(agent: str) -> None:
    text = words(200)
    data = chat_stream(text)
    out, translator = translate(agent, "openai_chat", data, random_cuts(random.Random(3), len(data), 25), lane=True, learn_after=8)
    assert translator.lane_events > 150
    # The lane copies each text's JSON literal as the server escaped it (here \\u00e9 for é in
    # every other chunk); the general path re-encodes it. Same JSON values, other bytes.
    assert events(out) == events(translate(agent, "openai_chat", data, [], lane=False)[0])
    parser = SseParser()
    turn = VALIDATORS[agent](parser.feed(out) + parser.finish())
    assert turn.text == "".join(text) and turn.usage is not None


# -- and refused where it must be -------------------------------------------------------------


def agent_error(agent: str, out: bytes) -> str | None:
    parser = SseParser()
    return VALIDATORS[agent](parser.feed(out) + parser.finish(), strict_json=False).error


@pytest.mark.parametrize("bad", [
    b'"bad escape \\x41"',  # not JSON: the template does not match, the general path reports
    b'"invalid utf-8 \xff\xfe"',  # matches the template's bytes; the texts' decoding refuses it
    b'"raw\tcontrol"',
    b'"unterminated',
])
def test_a_malformed_chunk_after_the_lane_is_learned_ends_in_the_agents_error(bad: bytes) -> None:
    good = chat_stream(words(40))
    cut = good.index(b"data: ", len(good) // 2)
    template = chat_chunk("PLACEHOLDER", 2)
    broken = template.replace(b'"PLACEHOLDER"', bad)
    data = good[:cut] + broken + good[cut:]
    for cuts in ([], list(range(50, len(data), 50))):
        out, translator = translate("anthropic_messages", "openai_chat", data, cuts, lane=True, learn_after=2)
        assert translator.lane_events > 0 or not cuts  # one small chunk is all parsed before the lane is learned
        general = events(translate("anthropic_messages", "openai_chat", data, cuts, lane=False)[0])
        lane = events(out)
        # Both end in the agent's error event. The general path decodes whole blocks of lines,
        # so it may report a bad byte before events of its block that the lane (event by event)
        # still delivers: the lane's events begin with the general path's.
        assert agent_error("anthropic_messages", out) == "api_error"
        assert lane[-1][0] == general[-1][0] == "error"
        assert lane[: len(general) - 1] == general[:-1]
        assert b'"PLACEHOLDER"' not in out and bad not in out


def test_chunks_the_template_does_not_cover_take_the_general_path() -> None:
    """A finish_reason, usage, a tool call or thinking in a chunk of the same shape changes what
    it means: such chunks must not be read as text."""
    texts = words(30)
    special = [
        chat_chunk("a", 5).replace(b'"finish_reason":null', b'"finish_reason":"length"'),
        chat_chunk("b", 6, usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}),
        chat_chunk("c", 7).replace(b'"content":"c"', b'"content":"c","reasoning_content":"think"'),
        chat_chunk("d", 8).replace(b'"content":"d"', b'"content":"d","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]'),
    ]
    for chunk in special:
        data = chat_stream(texts)
        cut = data.index(b"data: ", len(data) // 2)
        data = data[:cut] + chunk + data[cut:]
        cuts = list(range(64, len(data), 64))
        out, translator = translate("openai_responses", "openai_chat", data, cuts, lane=True, learn_after=2)
        assert translator.lane_events > 5
        assert events(out) == events(translate("openai_responses", "openai_chat", data, cuts, lane=False)[0])


def test_crlf_streams_take_the_lane() -> None:
    text = words(50)
    data = chat_stream(text).replace(b"\n", b"\r\n")
    cuts = list(range(64, len(data), 64))
    out, translator = translate("anthropic_messages", "openai_chat", data, cuts, lane=True, learn_after=2)
    assert translator.lane_events > 40
    assert events(out) == events(translate("anthropic_messages", "openai_chat", data, cuts, lane=False)[0])
    parser = SseParser()
    assert VALIDATORS["anthropic_messages"](parser.feed(out) + parser.finish()).text == "".join(text)


# -- Gemini: CRLF line ends and the usage so far on every chunk ---------------------------------


def gemini_chunk(text: str, usage: dict | None, finish: str | None = None) -> bytes:
    """A chunk as the Gemini API writes it: a space after each colon, CRLF line ends."""
    candidate: dict = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    doc: dict = {"candidates": [candidate]}
    if usage is not None:
        doc["usageMetadata"] = usage
    doc |= {"modelVersion": "gemini-x", "responseId": "r-123"}
    return b"data: " + json.dumps(doc, separators=(",", ": ")).encode() + b"\r\n\r\n"


def gemini_usage(prompt: int, out: int, cached: int = 0, thoughts: int = 0) -> dict:
    usage = {"promptTokenCount": prompt, "candidatesTokenCount": out, "totalTokenCount": prompt + out + thoughts,
             "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}
    if cached:
        usage["cachedContentTokenCount"] = cached
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


_usage_spec = st.one_of(st.none(), st.tuples(st.integers(0, 50), st.integers(0, 500), st.integers(0, 3), st.integers(0, 2)))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["anthropic_messages", "openai_chat", "openai_responses"]),
       st.lists(st.tuples(_word, _usage_spec), min_size=1, max_size=60), st.booleans(), st.randoms(use_true_random=False))
def test_gemini_lane_gives_the_general_paths_events_and_usage(agent: str, chunks: list, finished: bool, rng: random.Random) -> None:
    data = b"".join(gemini_chunk(text, None if spec is None else gemini_usage(*spec)) for text, spec in chunks)
    if finished:
        data += gemini_chunk("", gemini_usage(40, 7), "STOP")
    for n in (0, 5, 60):
        cuts = random_cuts(rng, len(data), n)
        with_lane, _ = translate(agent, "gemini", data, cuts, lane=True, learn_after=1)
        assert events(with_lane) == events(translate(agent, "gemini", data, cuts, lane=False)[0])


def test_gemini_chunks_take_the_lane_with_their_usage() -> None:
    text = words(120)
    data = b"".join(gemini_chunk(t, gemini_usage(30, n + 1, cached=20 if 30 <= n < 60 else 0)) for n, t in enumerate(text))
    data += gemini_chunk("", gemini_usage(30, 121), "STOP")
    for agent, size in (("anthropic_messages", 200), ("openai_chat", 5000), ("openai_responses", len(data))):
        cuts = list(range(size, len(data), size))  # runs of one event, of ~15, of all after learning
        out, translator = translate(agent, "gemini", data, cuts, lane=True, learn_after=StreamTranslator.LANE_AFTER)
        # The usage object changes shape twice (a cache count comes, then goes): the lane
        # learns its template again each time, after LANE_AFTER chunks on the general path.
        assert translator.lane_templates == 3
        assert translator.lane_events > 80  # of 120: the rest learn the three templates
        assert events(out) == events(translate(agent, "gemini", data, cuts, lane=False)[0])
        parser = SseParser()
        turn = VALIDATORS[agent](parser.feed(out) + parser.finish())
        assert turn.text == "".join(text)
    # The cache count seen mid-stream (and gone from the last chunks) is kept, as the general path keeps it.
    for cuts in ([], list(range(5000, len(data), 5000))):
        assert '"cache_read_input_tokens":20' in translate("anthropic_messages", "gemini", data, cuts, lane=True)[0].decode()
