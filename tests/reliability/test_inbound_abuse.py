"""What a hostile or broken client can do to the proxy's listening side.

Idle and slowloris connections at the usual descriptor limit, an oversized head
in one write, dot segments after the secret, and an agent that drops a stream
half-way. Each test names the promise it checks; see docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import posixpath
import socket
import threading
import time
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.clients import auth_headers, error_shape_problem, raw_call
from tests.reliability.faults import PROTOCOLS, Conn, FaultServer, canned_stream, good_request, sse_blocks

pytestmark = pytest.mark.reliability

USUAL_NOFILE = 1024  # the soft descriptor limit most Linux sessions start with
ATTACK_CONNECTIONS = 1100
AGENT_ANSWER_BOUND_S = 3.0


def _open_connections(port: int, n: int, first_bytes: bytes = b"") -> list[socket.socket]:
    """Open up to `n` connections (some may not get through a full backlog); send `first_bytes` on each."""
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=0.2)
        except OSError:
            continue
        if first_bytes:
            try:
                s.sendall(first_bytes)
            except OSError:
                pass
        socks.append(s)
    return socks


def _agent_request(base_url: str, secret: str) -> tuple[int | None, float, str]:
    """The agent's next request: (status or None, seconds, error)."""
    started = time.monotonic()
    try:
        out = raw_call(base_url, secret, "anthropic_messages", False, timeout_s=AGENT_ANSWER_BOUND_S + 0.5)
    except httpx.TimeoutException as exc:
        return None, time.monotonic() - started, repr(exc)
    return out.status, out.elapsed_s, out.error


# -- connection floods at the descriptor limit (hardening item 3) -----------------------------

ITEM3 = ("hardening item 3: no idle timeout and no connection limit inbound: at the descriptor limit the "
         "agent's next request waits in the backlog and asyncio prints EMFILE tracebacks")


@pytest.mark.xfail(strict=True, reason=ITEM3)
@pytest.mark.parametrize("kind", ["idle", "slowloris"])
def test_the_agent_is_served_while_connections_flood_the_proxy(kind: str, fault_server, proxy_process) -> None:
    """1,100 connections that send nothing (idle) or a head that never ends (slowloris),
    no secret needed, against a proxy with the usual 1,024 descriptors: the agent's request
    is answered within 3 s and nothing is printed."""
    up = fault_server()
    proxy = proxy_process("anthropic_messages", "passthrough", up.url, nofile=USUAL_NOFILE)
    head = b"POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-slow: a" if kind == "slowloris" else b""
    socks = _open_connections(proxy.port, ATTACK_CONNECTIONS, head)
    stop = threading.Event()

    def trickle() -> None:  # slowloris: one more header byte now and then, so the head is never idle
        while not stop.wait(0.5):
            for s in socks:
                try:
                    s.send(b"a")
                except OSError:
                    pass

    trickler = threading.Thread(target=trickle, daemon=True)
    if kind == "slowloris":
        trickler.start()
    try:
        time.sleep(0.5)  # let the proxy accept what it can
        status, took, error = _agent_request(proxy.base_url, proxy.secret)
    finally:
        stop.set()
        if trickler.is_alive():
            trickler.join(2)
        for s in socks:
            s.close()
    err = proxy.stop()
    assert len(socks) >= USUAL_NOFILE, f"only {len(socks)} connections got through; the attack did not reach the limit"
    assert status == 200 and took < AGENT_ANSWER_BOUND_S, f"agent request: status {status} after {took:.1f} s {error}"
    assert err == "", f"the proxy printed:\n{err[:2000]}"


# -- the request head ----------------------------------------------------------------------

ITEM12 = "hardening item 12: the 64 KiB head limit applies only to heads split over several reads"


@pytest.mark.parametrize("split", [pytest.param(False, marks=pytest.mark.xfail(strict=True, reason=ITEM12)), True],
                         ids=["one_write", "many_writes"])
def test_a_100_kb_header_is_refused(split: bool, fault_server, route_proxy) -> None:
    """A head over 64 KiB gets 431 (or 400) in the agent's protocol and never reaches the upstream."""
    up = fault_server()
    proxy = route_proxy("anthropic_messages", "passthrough", up.url)
    path, body = good_request("anthropic_messages", False)
    data = json.dumps(body).encode()
    head = (f"POST /{proxy.secret}{path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"x-api-key: {proxy.secret}\r\nx-padding: {'a' * 100_000}\r\ncontent-length: {len(data)}\r\n\r\n").encode()
    answer, reset = b"", False
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        try:
            if split:
                for i in range(0, len(head), 8192):
                    s.sendall(head[i : i + 8192])
                    time.sleep(0.002)
                s.sendall(data)
            else:
                s.sendall(head + data)
        except ConnectionError:
            pass  # refused while we were still sending: read what was answered
        try:
            while chunk := s.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and len(answer.split(b"\r\n\r\n", 1)[1]) >= _content_length(answer):
                    break
        except ConnectionError:
            reset = True  # closed with our unread bytes in its buffer: Linux answers with RST and may drop the 4xx
    assert up.requests == [], "the oversized request reached the upstream"
    if reset and not answer:
        return  # refused without a readable answer: not forwarded, not hung
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    assert status in (400, 431), f"answer: {answer[:300]!r}"
    assert error_shape_problem("anthropic_messages", answer.split(b"\r\n\r\n", 1)[1]) is None


def _content_length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 30


# -- the path after the secret (hardening item 10) --------------------------------------------

ITEM10 = "hardening item 10: dot segments after the secret reach the upstream and step out of the base_url's path prefix"
PREFIX = "/gateway/anthropic"


@pytest.mark.parametrize("tail", ["/../../v1/messages", "/%2e%2e/%2E%2E/v1/messages", "/v1/../../../v1/messages",
                                  "/./../v1/messages", "/v1/..%2f..%2f..%2fv1/messages"])
def test_dot_segments_never_leave_the_base_url_prefix(tail: str, fault_server, route_proxy) -> None:
    """`/SECRET/../../v1/messages` against a backend at http://host/gateway/anthropic: the agent
    gets a 4xx, or the request goes out under the prefix; never to a path outside it."""
    up = fault_server(prefix=PREFIX)
    proxy = route_proxy("anthropic_messages", "passthrough", up.url)
    _, body = good_request("anthropic_messages", False)
    data = json.dumps(body).encode()
    request = (f"POST /{proxy.secret}{tail} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
               f"x-api-key: {proxy.secret}\r\ncontent-length: {len(data)}\r\nconnection: close\r\n\r\n").encode() + data
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:  # httpx would normalise the path
        s.sendall(request)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    escaped = [r.target for r in up.requests if not _normalised(r.path).startswith(PREFIX + "/")]
    assert not escaped, f"reached the upstream outside {PREFIX}: {escaped} (status {status})"
    assert status < 500


def _normalised(path: str) -> str:
    """The path as a server that decodes and resolves dot segments sees it."""
    decoded = unquote(path)
    return posixpath.normpath(decoded) + ("/" if decoded.endswith("/") else "")


# -- an agent that drops a stream (hardening item 2) ------------------------------------------

ITEM2 = ("hardening item 2: an agent that drops a stream is not noticed: the upstream is read to the end and "
         "asyncio prints `socket.send() raised exception.` on stderr")
DROP_EVENTS = 300
DROP_EVENT_GAP_S = 0.01  # the whole upstream answer would take 3 s
UPSTREAM_CLOSE_BOUND_S = 1.0


def _slow_stream(events: int, gap_s: float):
    async def handler(conn: Conn) -> None:
        req = await conn.request()
        if req is None:
            return
        from agentwrap.protocols.endpoints import classify

        protocol = classify(req.path).protocol
        ctype, data = canned_stream(protocol, [f"piece {i} " for i in range(events)])
        conn.server.state["sent"] = 0
        conn.head(200, [("content-type", ctype)])
        for block in sse_blocks(data):
            conn.chunk(block)
            await conn.drain()
            conn.server.state["sent"] += 1
            await asyncio.sleep(gap_s)
        conn.end_chunks()
        await conn.drain()
        await conn.request()  # keep-alive: wait for the proxy to close

    return handler


@pytest.mark.xfail(strict=True, reason=ITEM2)
@pytest.mark.parametrize("route", ["passthrough", "translated"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_dropped_stream_closes_the_upstream(protocol: str, route: str, fault_server, route_proxy, printed) -> None:
    """The agent reads a few events and closes its connection: within 1 s agentwrap closes
    the upstream connection (the provider stops generating), and prints nothing."""
    up: FaultServer = fault_server(_slow_stream(DROP_EVENTS, DROP_EVENT_GAP_S))
    proxy = route_proxy(protocol, route, up.url)
    path, body = good_request(protocol, True)
    with httpx.Client(timeout=10) as client:
        with client.stream("POST", proxy.base_url + path, json=body, headers=auth_headers(protocol, proxy.secret)) as r:
            assert r.status_code == 200
            received = 0
            for piece in r.iter_raw():
                received += piece.count(b"\n\n")
                if received >= 5:
                    break
        dropped_at = time.monotonic()  # leaving the block closed the unread response's connection
    deadline = dropped_at + UPSTREAM_CLOSE_BOUND_S
    while 0 not in up.closed and time.monotonic() < deadline:
        time.sleep(0.02)
    sent = up.state.get("sent", 0)
    closed_after = up.closed[0] - dropped_at if 0 in up.closed else None
    time.sleep(0.2)  # what the proxy prints about the dropped connection comes right after the drop
    err = printed()
    problems = []
    if closed_after is None:
        problems.append(f"the upstream was still streaming {UPSTREAM_CLOSE_BOUND_S:g} s after the agent left ({sent} events sent)")
    elif sent >= DROP_EVENTS:
        problems.append("the upstream was read to the end")
    if err:
        problems.append(f"agentwrap printed {len(err.splitlines())} lines, first: {err.splitlines()[0]}")
    assert not problems, "; ".join(problems)


# -- malformed HTTP ---------------------------------------------------------------------------

HEAD_EXAMPLES = int(os.environ.get("RELIABILITY_FUZZ_EXAMPLES", "60"))
SMUGGLING_HEADERS = [
    b"content-length: -1", b"content-length: 99999999999999999999", b"content-length: 1, 2", b"content-length: x",
    b"transfer-encoding: chunked", b"transfer-encoding: gzip, chunked", b"transfer-encoding: identity",
    b"transfer-encoding:\tchunked", b" folded: continuation", b"x-nul: a\x00b", b"bad name: v", b"x-utf8: \xc3\xa9\xff",
    b"host: a", b"host: b", b"expect: 100-continue", b"connection: upgrade", b"upgrade: websocket", b"x-long: " + b"a" * 9000,
]


@st.composite
def http_requests(draw, secret: str) -> bytes:
    """A model call's request with its head and framing broken in ways parsers disagree on."""
    _, body = good_request("anthropic_messages", False)
    data = json.dumps(body).encode()
    method = draw(st.sampled_from([b"POST", b"GET", b"PUT", b"CONNECT", b"OPTIONS", b"P\x00ST", b"POST" * 300]))
    target = draw(st.sampled_from([f"/{secret}/v1/messages".encode(), b"*", f"http://127.0.0.1/{secret}/v1/messages".encode(),
                                   f"/{secret}/v1/messages?x=\xff".encode("latin-1"), b"/" + b"a" * 70_000, b""]))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 extra", b"HTTX/1.1"]))
    lines = [method + b" " + target + b" " + version, b"content-type: application/json", f"x-api-key: {secret}".encode()]
    lines += draw(st.lists(st.sampled_from(SMUGGLING_HEADERS), max_size=4))
    if draw(st.booleans()):
        lines.append(b"content-length: %d" % len(data))
    payload = draw(st.sampled_from([data, data[: len(data) // 2], b"5\r\nhello\r\n0\r\n\r\n", b"zz\r\n", data + b"GET / HTTP/1.1\r\n\r\n"]))
    raw = b"\r\n".join(lines) + b"\r\n\r\n" + payload
    if draw(st.booleans()):
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at + 1 :]
    return raw


def test_malformed_http_gets_an_answer_or_a_close(fault_server, route_proxy, printed) -> None:
    """Broken request lines, headers and framing, sent whole and then our side shut: the proxy
    answers (below 500) or closes within 5 s, keeps serving, and prints nothing."""
    up = fault_server()
    proxy = route_proxy("anthropic_messages", "passthrough", up.url)

    @settings(max_examples=HEAD_EXAMPLES, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(raw=http_requests(proxy.secret))
    def fuzz(raw: bytes) -> None:
        answer = b""
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
            try:
                s.sendall(raw)
                s.shutdown(socket.SHUT_WR)
                while chunk := s.recv(65536):
                    answer += chunk
            except ConnectionError:
                pass  # closed with unread bytes: a reset is an answer too
            except TimeoutError:
                pytest.fail(f"no answer and no close within 5 s (got {answer[:200]!r})")
        assert time.monotonic() - started < 5
        for status, response in _responses(answer):
            assert status < 500, f"{response[:300]!r}"
        assert raw_call(proxy.base_url, proxy.secret, "anthropic_messages", False).status == 200
        err = printed()
        assert err == "", f"agentwrap printed on stderr:\n{err[:2000]}"

    fuzz()


def _responses(answer: bytes):
    """(status, bytes) of each response in `answer` (Content-Length framed; a chunked one ends the walk)."""
    while answer.startswith(b"HTTP/1."):
        head, _, rest = answer.partition(b"\r\n\r\n")
        yield int(head.split(b" ", 2)[1]), answer[:300]
        length = _content_length(head + b"\r\n\r\n")
        if length == 1 << 30:
            return
        answer = rest[length:]
