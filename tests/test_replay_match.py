"""Replay matching: volatile fields are ignored, real differences are reported."""

from __future__ import annotations

import json

from agentwrap.backends.replay import RecordedExchange, ReplayBackend, request_key


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
