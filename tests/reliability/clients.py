"""Clients for the reliability suite: the official SDKs and a raw HTTP client, each
reduced to one outcome a test can judge.

`sdk_call` drives the SDK of a protocol (anthropic, openai, google-genai) the
way an agent does and returns an `SdkOutcome`: a complete answer, an error
status, the protocol's error event mid-stream, a connection error, or a
*silent truncation* (the stream ended and the SDK noticed nothing). Any
other exception escapes: that is a client crash, and the test fails on it.

`raw_call` posts the same request with httpx and keeps the bytes, which
`judge_raw` checks against the protocol: an error status in the protocol's
error shape, a whole answer that is complete, or a stream that ends
grammar-valid (tests/support/grammar.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import anthropic
import httpx
import openai
from google import genai
from google.genai import errors as gerrors
from google.genai import types as gtypes

from agentwrap.protocols.sse import SseParser

try:  # google-genai talks through httpx2 where it is installed, and lets its transport errors through
    import httpx2

    _GENAI_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError, httpx2.TransportError)
except ImportError:  # pragma: no cover - depends on the google-genai build
    _GENAI_TRANSPORT_ERRORS = (httpx.TransportError,)
from tests.support.grammar import VALIDATORS, Turn
from tests.reliability.faults import good_request

__all__ = ["SdkOutcome", "RawOutcome", "sdk_call", "raw_call", "error_shape_problem", "judge_raw", "auth_headers", "leaks"]

CLIENT_TIMEOUT_S = 15.0


@dataclass
class SdkOutcome:
    kind: str  # complete | status_error | stream_error | connection_error | truncated
    text: str = ""
    status: int | None = None
    detail: str = ""


def sdk_call(protocol: str, base_url: str, secret: str, stream: bool) -> SdkOutcome:
    """One model call through the proxy at `base_url` (which carries the secret) with the official SDK."""
    return _SDK[protocol](base_url, secret, stream)


def _anthropic(base_url: str, secret: str, stream: bool) -> SdkOutcome:
    text, done = "", False
    with anthropic.Anthropic(base_url=base_url, auth_token=secret, max_retries=0, timeout=CLIENT_TIMEOUT_S) as client:
        args = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
        try:
            if stream:
                with client.messages.create(**args, stream=True) as events:
                    for event in events:
                        if event.type == "content_block_delta" and event.delta.type == "text_delta":
                            text += event.delta.text
                        elif event.type == "message_stop":
                            done = True
            else:
                msg = client.messages.create(**args)
                text = "".join(b.text for b in msg.content if b.type == "text")
                done = msg.stop_reason is not None
        except anthropic.APIConnectionError as exc:
            return SdkOutcome("connection_error", text, None, repr(exc))
        except anthropic.APIStatusError as exc:
            # An `event: error` mid-stream is raised with the stream's own status (200).
            kind = "stream_error" if exc.status_code < 400 else "status_error"
            return SdkOutcome(kind, text, exc.status_code, str(exc))
    return SdkOutcome("complete" if done else "truncated", text)


def _openai_chat(base_url: str, secret: str, stream: bool) -> SdkOutcome:
    text, finish = "", None
    with openai.OpenAI(base_url=base_url + "/v1", api_key=secret, max_retries=0, timeout=CLIENT_TIMEOUT_S) as client:
        args = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        try:
            if stream:
                with client.chat.completions.create(**args, stream=True) as chunks:
                    for chunk in chunks:
                        for choice in chunk.choices:
                            text += choice.delta.content or ""
                            finish = choice.finish_reason or finish
            else:
                r = client.chat.completions.create(**args)
                text, finish = r.choices[0].message.content or "", r.choices[0].finish_reason
        except openai.APIConnectionError as exc:
            return SdkOutcome("connection_error", text, None, repr(exc))
        except openai.APIStatusError as exc:
            return SdkOutcome("status_error", text, exc.status_code, str(exc))
        except openai.APIError as exc:  # `data: {"error": ...}` mid-stream
            return SdkOutcome("stream_error", text, None, str(exc))
    return SdkOutcome("complete" if finish else "truncated", text)


def _openai_responses(base_url: str, secret: str, stream: bool) -> SdkOutcome:
    text, status = "", None
    with openai.OpenAI(base_url=base_url + "/v1", api_key=secret, max_retries=0, timeout=CLIENT_TIMEOUT_S) as client:
        try:
            if stream:
                with client.responses.create(model="m", input="hi", stream=True) as events:
                    for event in events:
                        if event.type == "response.output_text.delta":
                            text += event.delta
                        elif event.type == "response.completed":
                            status = "completed"
                        elif event.type in ("response.failed", "error"):
                            return SdkOutcome("stream_error", text, None, event.type)
            else:
                r = client.responses.create(model="m", input="hi")
                text, status = r.output_text, r.status
        except openai.APIConnectionError as exc:
            return SdkOutcome("connection_error", text, None, repr(exc))
        except openai.APIStatusError as exc:
            return SdkOutcome("status_error", text, exc.status_code, str(exc))
        except openai.APIError as exc:
            return SdkOutcome("stream_error", text, None, str(exc))
    return SdkOutcome("complete" if status == "completed" else "truncated", text)


def _gemini(base_url: str, secret: str, stream: bool) -> SdkOutcome:
    text, finish = "", None
    client = genai.Client(api_key=secret, http_options=gtypes.HttpOptions(base_url=base_url, timeout=int(CLIENT_TIMEOUT_S * 1000)))
    try:
        if stream:
            for chunk in client.models.generate_content_stream(model="g", contents="hi"):
                for cand in chunk.candidates or []:
                    for part in (cand.content.parts if cand.content else None) or []:
                        text += part.text or ""
                    finish = cand.finish_reason or finish
        else:
            r = client.models.generate_content(model="g", contents="hi")
            text = r.text or ""
            finish = r.candidates[0].finish_reason if r.candidates else None
    except gerrors.APIError as exc:
        kind = "stream_error" if stream and text else "status_error"
        return SdkOutcome(kind, text, exc.code, str(exc))
    except _GENAI_TRANSPORT_ERRORS as exc:
        return SdkOutcome("connection_error", text, None, repr(exc))
    finally:
        client.close()
    return SdkOutcome("complete" if finish else "truncated", text)


_SDK = {"anthropic_messages": _anthropic, "openai_chat": _openai_chat, "openai_responses": _openai_responses, "gemini": _gemini}


# -- raw -------------------------------------------------------------------------------


@dataclass
class RawOutcome:
    status: int | None  # None: no complete response (connection error)
    headers: list[tuple[str, str]]
    body: bytes
    elapsed_s: float
    error: str = ""  # the transport error, when status is None

    def text_of_everything(self) -> bytes:
        return b"\n".join(f"{n}: {v}".encode("latin-1", "replace") for n, v in self.headers) + b"\n" + self.body


def auth_headers(protocol: str, secret: str) -> dict[str, str]:
    """The credential header the protocol's SDK sends with the session secret as key."""
    if protocol == "anthropic_messages":
        return {"x-api-key": secret}
    if protocol == "gemini":
        return {"x-goog-api-key": secret}
    return {"authorization": f"Bearer {secret}"}


def raw_call(
    base_url: str, secret: str, protocol: str, stream: bool, *, path: str | None = None, content: bytes | None = None,
    timeout_s: float = CLIENT_TIMEOUT_S,
) -> RawOutcome:
    """POST a model call (or `content` at `path`) and keep every byte of the answer."""
    default_path, body = good_request(protocol, stream)
    data = content if content is not None else json.dumps(body).encode()
    headers = {"content-type": "application/json", **auth_headers(protocol, secret)}
    started = time.monotonic()
    with httpx.Client(timeout=timeout_s) as client:
        try:
            with client.stream("POST", base_url + (path or default_path), content=data, headers=headers) as r:
                got = b"".join(r.iter_raw())
                return RawOutcome(r.status_code, list(r.headers.multi_items()), got, time.monotonic() - started)
        except httpx.TimeoutException:
            raise  # a hang: the test fails on it
        except httpx.TransportError as exc:
            return RawOutcome(None, [], b"", time.monotonic() - started, repr(exc))


def error_shape_problem(protocol: str, body: bytes) -> str | None:
    """None if `body` is an error document in `protocol`'s own shape, else what is wrong."""
    try:
        doc = json.loads(body)
    except ValueError:
        return f"error body is not JSON: {body[:200]!r}"
    if not isinstance(doc, dict) or not isinstance(doc.get("error"), dict):
        return f"no error object: {body[:200]!r}"
    err = doc["error"]
    if not isinstance(err.get("message"), str):
        return f"error without a message: {body[:200]!r}"
    if protocol == "anthropic_messages" and not (doc.get("type") == "error" and isinstance(err.get("type"), str)):
        return f"not an Anthropic error: {body[:200]!r}"
    if protocol == "gemini" and not (isinstance(err.get("code"), int) and isinstance(err.get("status"), str)):
        return f"not a Gemini error: {body[:200]!r}"
    return None


def _whole_complete(protocol: str, doc: dict) -> bool:
    if protocol == "anthropic_messages":
        return doc.get("type") == "message" and doc.get("stop_reason") is not None
    if protocol == "openai_chat":
        return doc.get("object") == "chat.completion" and doc["choices"][0].get("finish_reason") is not None
    if protocol == "openai_responses":
        return doc.get("object") == "response" and doc.get("status") == "completed"
    return bool(doc["candidates"][0].get("finishReason"))


def stream_turn(protocol: str, body: bytes) -> Turn:
    """The stream's events, validated: raises on invalid UTF-8 or a grammar error."""
    parser = SseParser()
    events = parser.feed(body) + parser.finish()
    return VALIDATORS[protocol](events)


def judge_raw(protocol: str, stream: bool, out: RawOutcome, *, failed: bool, cut_allowed: bool = False) -> str:
    """Check a raw answer against the promises; return what it was. `failed`: the upstream
    broke, so a complete success is impossible and an error must be said in the protocol.
    `cut_allowed`: an aborted connection is the honest answer (a whole body cut after its
    head went out)."""
    if out.status is None:
        assert cut_allowed, f"connection error where a protocol answer was due: {out.error}"
        return "cut"
    if out.status >= 400:
        problem = error_shape_problem(protocol, out.body)
        assert problem is None, f"status {out.status}: {problem}"
        return f"status {out.status}"
    if stream:
        turn = stream_turn(protocol, out.body)
        if failed:
            assert turn.error is not None, "the upstream failed but the stream ends as if complete"
            return "stream ends with the protocol's error event"
        return "stream complete"
    doc = json.loads(out.body)
    assert _whole_complete(protocol, doc), f"incomplete whole answer: {out.body[:300]!r}"
    assert not failed, "the upstream failed but the answer looks complete"
    return "complete"


def leaks(out: RawOutcome, *values: str) -> list[str]:
    """Which of `values` appear anywhere in the answer (headers or body), in any of the
    forms of `tests.support.secrets` (base64, hex, percent- and JSON-escaped, UTF-16)."""
    from tests.support.secrets import find_secret

    everything = out.text_of_everything()
    return [v for v in values if v and find_secret(everything, v) is not None]
