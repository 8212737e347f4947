"""The sans-IO chunked body decoder: any split gives the same body; garbage gives UpstreamProtocol."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwrap.backends.chunked import ChunkedDecoder
from agentwrap.errors import UpstreamProtocol


def encode(chunks: list[bytes], trailers: bytes = b"", ext: bool = False) -> bytes:
    out = b""
    for c in chunks:
        out += b"%x%s\r\n%s\r\n" % (len(c), b";name=value" if ext else b"", c)
    return out + b"0\r\n" + trailers + b"\r\n"


def decode(data: bytes, cuts: list[int]) -> tuple[bytes, ChunkedDecoder]:
    dec = ChunkedDecoder()
    out = b""
    prev = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        for piece in dec.feed(data[prev:cut]):
            out += piece
        prev = cut
    return out, dec


@settings(max_examples=300)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=300), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=20),
    trailers=st.sampled_from([b"", b"x-checksum: abc\r\n", b"a: 1\r\nb: 2\r\n"]),
    ext=st.booleans(),
    leftover=st.sampled_from([b"", b"HTTP/1.1 200 OK\r\n"]),
)
def test_any_split_gives_the_same_body(chunks, cuts, trailers, ext, leftover):
    data = encode(chunks, trailers, ext) + leftover
    body, dec = decode(data, [c for c in cuts if c <= len(data)])
    assert body == b"".join(chunks)
    assert dec.done
    assert dec.leftover == leftover


def test_byte_by_byte():
    data = encode([b"data: one\n\n", b"data: two\n\n"])
    dec = ChunkedDecoder()
    body = b"".join(p for i in range(len(data)) for p in dec.feed(data[i : i + 1]))
    assert body == b"data: one\n\ndata: two\n\n" and dec.done


def test_pieces_come_out_before_the_chunk_is_complete():
    dec = ChunkedDecoder()
    assert dec.feed(b"a\r\n01234") == [b"01234"]
    assert dec.feed(b"56789\r\n") == [b"56789"]
    assert not dec.done


@pytest.mark.parametrize(
    "bad",
    [b"zz\r\nhello\r\n", b"+5\r\nhello\r\n", b"-1\r\n", b"5 5\r\nhello\r\n", b"5\r\nhelloXX", b"1_0\r\n", b"\r\n"],
)
def test_malformed_framing_is_upstream_protocol(bad):
    with pytest.raises(UpstreamProtocol):
        ChunkedDecoder().feed(bad)


def test_overlong_size_line_is_refused():
    with pytest.raises(UpstreamProtocol):
        ChunkedDecoder().feed(b"1" * 5000)


@settings(max_examples=300)
@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=8))
def test_arbitrary_bytes_give_pieces_or_upstream_protocol(data, cuts):
    try:
        decode(data, [c for c in cuts if c <= len(data)])
    except UpstreamProtocol:
        pass
