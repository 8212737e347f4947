"""The relay's pipelines as plain data: the pass-through failure tail and key redaction."""

from __future__ import annotations

from agentwrap.capture.redact import Redactor
from agentwrap.proxy.relay import KeyedPassthrough, Passthrough, Redacting

KEY = "sk-relay-0123456789abcdefghijklmnop"
REDACTOR = Redactor([KEY], replacement=b"[redacted by agentwrap]", keep_length=True)


def test_a_failure_after_a_whole_event_appends_the_error_event():
    p = Passthrough("anthropic_messages", sse=True)
    p.feed(b'event: ping\ndata: {"type":"ping"}\n\n')
    assert p.abort("api_error", "cut").startswith(b"event: error\ndata: ")


def test_a_failure_inside_an_event_finishes_it_first():
    p = Passthrough("anthropic_messages", sse=True)
    p.feed(b'event: content_block_delta\ndata: {"type":"content_bl')
    assert p.abort("timeout", "cut").startswith(b"\n\nevent: error\n")


def test_a_body_that_is_not_an_open_sse_stream_is_cut():
    assert Passthrough("openai_chat", sse=False).abort("api_error", "cut") is None


def test_a_key_split_across_pieces_is_held_back_only_as_long_as_it_could_be_a_key():
    p = KeyedPassthrough("anthropic_messages", True, REDACTOR)
    out = p.feed(b'data: {"text":"key ' + KEY[:10].encode())
    assert out == b'data: {"text":"key '  # the start of the key waits
    out += p.feed(KEY[10:].encode() + b' end"}\n\n')
    assert out == b'data: {"text":"key [redacted by agentwrap]' + b"*" * (len(KEY) - 23) + b' end"}\n\n'
    assert p.feed(b"no key here\n\n") == b"no key here\n\n"  # nothing else is delayed
    assert p.finish() == b"" and p.held == 0


def test_held_bytes_are_released_before_the_error_tail_and_counted_as_the_upstreams():
    p = KeyedPassthrough("anthropic_messages", True, REDACTOR)
    assert p.feed(b"data: sk-rel") == b"data: "
    tail = p.abort("api_error", "cut")
    assert tail.startswith(b"sk-rel\n\nevent: error") and p.held == len(b"sk-rel")


class _Echo:
    """A stand-in translation: puts out what it gets, and its own closing."""

    def feed(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b"closing " + KEY.encode()

    def abort(self, error_type: str, message: str) -> bytes:
        return message.encode()


def test_any_pipeline_can_be_redacted():
    r = Redacting(_Echo(), REDACTOR)
    assert KEY.encode() not in r.feed(b"x " + KEY.encode() + b" y") + r.finish()
    assert KEY.encode() not in Redacting(_Echo(), REDACTOR).abort("api_error", f"failed: {KEY}")
