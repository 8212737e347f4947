"""An upstream that echoes the provider key it received must not hand it to the agent.

The upstream here is a real loopback server (stdlib, threaded) that puts the
key of each request into its answer: in an error message and a
`www-authenticate` header (whole answers), or in a text delta whose bytes it
writes in two pieces cut in the middle of the key (streams). The clients are
the official SDKs and httpx; the proxy runs as a session builds it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import httpx
import pytest

from tests.conftest import http_profile

UP_KEY = "sk-echo-0123456789abcdefghijklmnop"
MARKER = "[redacted by agentwrap]"


def _anthropic_stream(text: str) -> list[bytes]:
    start = {"type": "message_start", "message": {"id": "msg_echo", "type": "message", "role": "assistant", "model": "m",
                                                 "content": [], "stop_reason": None, "stop_sequence": None,
                                                 "usage": {"input_tokens": 3, "output_tokens": 1}}}
    events = [
        ("message_start", start),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 5}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events]


def _chat_stream(text: str) -> list[bytes]:
    def chunk(delta: dict, finish: str | None = None) -> bytes:
        doc = {"id": "chatcmpl-echo", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(doc)}\n\n".encode()

    return [chunk({"role": "assistant", "content": ""}), chunk({"content": text}), chunk({}, "stop"), b"data: [DONE]\n\n"]


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format, *args):  # noqa: A002
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        key = self.headers.get("x-api-key") or (self.headers.get("authorization") or "").removeprefix("Bearer ")
        self.server.keys.append(key)
        chat = self.path.endswith("/chat/completions")
        if not body.get("stream"):
            if chat:
                error = {"error": {"message": f"Incorrect API key provided: {key}.", "type": "invalid_request_error", "code": "invalid_api_key"}}
            else:
                error = {"type": "error", "error": {"type": "authentication_error", "message": f"invalid x-api-key: {key}"}}
            data = json.dumps(error).encode()
            self.send_response(401)
            self.send_header("content-type", "application/json")
            self.send_header("www-authenticate", f'Key realm="api", key="{key}"')
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        events = (_chat_stream if chat else _anthropic_stream)(f"the key is {key}.")
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for event in events:
            at = event.find(key.encode())
            # The event that holds the key goes out in two pieces, cut in the middle of the key.
            pieces = [event] if at < 0 else [event[: at + len(key) // 2], event[at + len(key) // 2 :]]
            for piece in pieces:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
                if len(pieces) > 1:
                    time.sleep(0.05)  # two socket reads on the proxy's side
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    keys: list[str]


@pytest.fixture
def echo():
    server = _Server(("127.0.0.1", 0), _Echo)
    server.keys = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def _profile(tmp_path, protocol: str, echo, key_env: str | None = "UP_KEY"):
    base = _url(echo) + ("/v1" if protocol == "openai_chat" else "")
    return http_profile(tmp_path, protocol, base, api_key_env=key_env)


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


@pytest.mark.parametrize("protocol", ["anthropic_messages", "openai_chat"], ids=["pass-through", "translated"])
def test_a_streamed_echo_split_across_upstream_pieces_reaches_the_agent_redacted(start_proxy, echo, tmp_path, protocol):
    proxy = start_proxy("claude", _profile(tmp_path, protocol, echo), _env(UP_KEY=UP_KEY))
    with anthropic.Anthropic(base_url=proxy.base_url, api_key=proxy.secret, max_retries=0) as client, \
            client.messages.stream(model="m", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as stream:
        text = stream.get_final_text()
    assert echo.keys == [UP_KEY], "the upstream got the real key"
    assert UP_KEY not in text
    # Same length as the key, so a Content-Length (where there is one) stays true.
    assert text == "the key is " + MARKER + "*" * (len(UP_KEY) - len(MARKER)) + "."
    with httpx.stream("POST", proxy.base_url + "/v1/messages", timeout=10,
                      json={"model": "m", "max_tokens": 8, "stream": True, "messages": [{"role": "user", "content": "hi"}]}) as r:
        pieces = list(r.iter_raw())
    raw = b"".join(pieces)
    assert UP_KEY.encode() not in raw
    assert MARKER.encode() in raw and b"message_stop" in raw.rsplit(b"\n\n", 2)[-2]


@pytest.mark.parametrize("protocol", ["anthropic_messages", "openai_chat"], ids=["pass-through", "translated"])
def test_a_whole_echo_in_body_and_header_reaches_the_agent_redacted(start_proxy, echo, tmp_path, protocol):
    proxy = start_proxy("claude", _profile(tmp_path, protocol, echo), _env(UP_KEY=UP_KEY))
    with anthropic.Anthropic(base_url=proxy.base_url, api_key=proxy.secret, max_retries=0) as client, \
            pytest.raises(anthropic.AuthenticationError) as info:
        client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert echo.keys == [UP_KEY]
    response = info.value.response
    assert UP_KEY not in response.text and MARKER in info.value.message
    assert all(UP_KEY not in v for v in response.headers.values())
    if protocol == "anthropic_messages":  # relayed as received: the header is the upstream's, redacted
        assert MARKER in response.headers["www-authenticate"]
        assert int(response.headers["content-length"]) == len(response.content)


def test_the_native_key_is_redacted_too(start_proxy, echo, tmp_path):
    """Key mode from the agent's own variable (and the endpoint it was configured for):
    the user's key goes upstream, never back."""
    native = "sk-ant-native-0123456789abcdefghij"
    proxy = start_proxy("claude", None, _env(ANTHROPIC_API_KEY=native, ANTHROPIC_BASE_URL=_url(echo)))
    r = httpx.post(proxy.base_url + "/v1/messages", json={"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    assert echo.keys == [native]
    assert r.status_code == 401 and native not in r.text and MARKER in r.text


def test_login_pass_through_holds_no_key_and_changes_nothing(start_proxy, echo, tmp_path):
    """No key held (the agent's own login passes through): nothing is looked for, the
    agent's own token comes back as the upstream sent it."""
    proxy = start_proxy("claude", None, _env(ANTHROPIC_BASE_URL=_url(echo)))
    assert proxy.dispatcher.routes.redactor is None
    token = "oauth-token-of-the-user-0123456789"
    with anthropic.Anthropic(base_url=proxy.base_url, auth_token=token, max_retries=0) as client, \
            client.messages.stream(model="m", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as stream:
        assert stream.get_final_text() == f"the key is {token}."
