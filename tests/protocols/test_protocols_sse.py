"""SseParser and encode_sse: table cases at every split, and properties."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwrap.errors import UpstreamProtocol
from agentwrap.protocols.sse import MAX_SSE_EVENT_BYTES, SseEvent, SseParser, encode_sse


def parse_whole(data: bytes, **kw) -> list[SseEvent]:
    parser = SseParser(**kw)
    return parser.feed(data) + parser.finish()


def parse_bytewise(data: bytes, **kw) -> list[SseEvent]:
    parser = SseParser(**kw)
    out: list[SseEvent] = []
    for i in range(len(data)):
        out += parser.feed(data[i : i + 1])
    return out + parser.finish()


def parse_split(data: bytes, cuts: list[int], **kw) -> list[SseEvent]:
    parser = SseParser(**kw)
    out: list[SseEvent] = []
    start = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        out += parser.feed(data[start:cut])
        start = cut
    return out + parser.finish()


def all_ways(data: bytes, **kw) -> list[list[SseEvent]]:
    rng = random.Random(data)
    ways = [parse_whole(data, **kw), parse_bytewise(data, **kw)]
    for _ in range(5):
        ways.append(parse_split(data, [rng.randrange(len(data) + 1) for _ in range(rng.randrange(1, 6))], **kw))
    return ways


E = SseEvent

CASES = [
    ("single", b"data: hello\n\n", [E(None, "hello")]),
    ("event name", b"event: message_start\ndata: {}\n\n", [E("message_start", "{}")]),
    ("multi-line data joined with LF", b"data: a\ndata: b\ndata:\n\n", [E(None, "a\nb\n")]),
    ("no space after colon", b"data:x\n\n", [E(None, "x")]),
    ("only one leading space stripped", b"data:  two\n\n", [E(None, " two")]),
    ("comment ignored", b": ping\ndata: x\n: more\n\n", [E(None, "x")]),
    ("field without colon", b"data\n\n", [E(None, "")]),
    ("unknown field and retry ignored", b"retry: 10\nfoo: bar\ndata: x\n\n", [E(None, "x")]),
    ("CRLF", b"event: e\r\ndata: x\r\n\r\n", [E("e", "x")]),
    ("CR only", b"data: x\rdata: y\r\r", [E(None, "x\ny")]),
    ("mixed endings", b"data: a\r\n\ndata: b\r\rdata: c\n\r\n", [E(None, "a"), E(None, "b"), E(None, "c")]),
    ("no data, no dispatch", b"event: ping\n\n", []),
    ("event type resets", b"event: a\ndata: 1\n\ndata: 2\n\n", [E("a", "1"), E(None, "2")]),
    ("id persists", b"id: 7\ndata: 1\n\ndata: 2\n\n", [E(None, "1", "7"), E(None, "2", "7")]),
    ("id with NUL ignored", b"id: a\x00b\ndata: 1\n\n", [E(None, "1", None)]),
    ("final event without blank line", b"data: tail", [E(None, "tail")]),
    ("final event without blank line after LF", b"data: tail\n", [E(None, "tail")]),
    ("blank lines only", b"\n\n\r\n", []),
    ("leading BOM", b"\xef\xbb\xbfdata: x\n\n", [E(None, "x")]),
    ("U+2028 stays inside data", "data: {\"t\":\"a\u2028b\u0085c\"}\n\n".encode(), [E(None, '{"t":"a\u2028b\u0085c"}')]),
    ("multi-byte characters", "data: héllo 🌍 日本\n\n".encode(), [E(None, "héllo 🌍 日本")]),
    ("colon in value", b"data: a: b\n\n", [E(None, "a: b")]),
    ("empty input", b"", []),
]


@pytest.mark.parametrize("name,data,expected", CASES, ids=[c[0] for c in CASES])
def test_parser_cases_at_every_split(name: str, data: bytes, expected: list[SseEvent]) -> None:
    for result in all_ways(data):
        assert result == expected


INVALID = [
    ("invalid byte", b"data: \xff\n\n"),
    ("truncated multi-byte at end", b"data: \xe6\x97"),
    ("overlong encoding", b"data: \xc0\xaf\n\n"),
    ("lone surrogate", b"data: \xed\xa0\x80\n\n"),
]


@pytest.mark.parametrize("name,data", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_utf8_raises_upstream_protocol(name: str, data: bytes) -> None:
    for parse in (parse_whole, parse_bytewise):
        with pytest.raises(UpstreamProtocol):
            parse(data)


def test_event_larger_than_max_raises() -> None:
    limit = 64
    ok = b"data: " + b"x" * (limit - 1) + b"\n\n"
    assert parse_whole(ok, max_event_bytes=limit) == [E(None, "x" * (limit - 1))]
    too_big = b"data: " + b"x" * 40 + b"\ndata: " + b"y" * 40 + b"\n\n"
    for result in (parse_whole, parse_bytewise):
        with pytest.raises(UpstreamProtocol, match="larger than 64"):
            result(too_big, max_event_bytes=limit)


def test_unterminated_line_is_bounded() -> None:
    parser = SseParser(max_event_bytes=1000)
    with pytest.raises(UpstreamProtocol):
        for _ in range(100):
            parser.feed(b"data: " + b"z" * 50)


def test_many_small_events_are_not_one_big_event() -> None:
    data = b"data: 0123456789\n\n" * 1000
    assert len(parse_whole(data, max_event_bytes=32)) == 1000


def test_default_max_is_16_mib() -> None:
    assert MAX_SSE_EVENT_BYTES == 16 * 1024 * 1024
    assert SseParser().max_event_bytes == MAX_SSE_EVENT_BYTES


def test_split_crlf_across_chunks_is_one_line_end() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\r") == [E(None, "a")]
    assert parser.feed(b"\n") == []  # the LF of that CRLF, not a second blank line
    assert parser.feed(b"data: b\n\n") == [E(None, "b")]


def test_multibyte_character_split_across_chunks() -> None:
    raw = "data: 🌍\n\n".encode()
    cut = raw.index(b"\xf0") + 2
    parser = SseParser()
    assert parser.feed(raw[:cut]) == []
    assert parser.feed(raw[cut:]) == [E(None, "🌍")]


def test_finish_resets_for_reuse() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a") == []
    assert parser.finish() == [E(None, "a")]
    assert parser.finish() == []


ENCODE_CASES = [
    ("plain", "x", None, b"data: x\n\n"),
    ("event", "{}", "message_stop", b"event: message_stop\ndata: {}\n\n"),
    ("newlines become data lines", "a\nb", None, b"data: a\ndata: b\n\n"),
    ("CRLF and CR too", "a\r\nb\rc", None, b"data: a\ndata: b\ndata: c\n\n"),
    ("trailing newline kept", "a\n", None, b"data: a\ndata: \n\n"),
    ("empty", "", None, b"data: \n\n"),
]


@pytest.mark.parametrize("name,data,event,expected", ENCODE_CASES, ids=[c[0] for c in ENCODE_CASES])
def test_encode_sse(name: str, data: str, event: str | None, expected: bytes) -> None:
    assert encode_sse(data, event) == expected


# -- properties ---------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_event_name = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), min_size=1, max_size=10)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=8))
def test_arbitrary_bytes_give_events_or_upstream_protocol(data: bytes, cuts: list[int]) -> None:
    for parse in (lambda d: parse_whole(d, max_event_bytes=64), lambda d: parse_split(d, cuts, max_event_bytes=64)):
        try:
            events = parse(data)
        except UpstreamProtocol:
            continue
        assert all(isinstance(e, SseEvent) and isinstance(e.data, str) for e in events)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=8))
def test_any_split_gives_the_same_result(data: bytes, cuts: list[int]) -> None:
    def outcome(parse):
        try:
            return parse()
        except UpstreamProtocol:
            return "error"

    whole = outcome(lambda: parse_whole(data))
    assert outcome(lambda: parse_split(data, cuts)) == whole
    assert outcome(lambda: parse_bytewise(data)) == whole


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(_text, st.none() | _event_name), min_size=1, max_size=6),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
    st.lists(st.integers(0, 2000), max_size=10),
)
def test_encode_then_parse_round_trips(events: list[tuple[str, str | None]], newline: bytes, cuts: list[int]) -> None:
    wire = b"".join(encode_sse(data, event) for data, event in events).replace(b"\n", newline)
    expected = [E(event, data.replace("\r\n", "\n").replace("\r", "\n")) for data, event in events]
    assert parse_split(wire, cuts) == expected
    assert parse_bytewise(wire) == expected
