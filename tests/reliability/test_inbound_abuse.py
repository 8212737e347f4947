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
from tests.reliability.faults import PROTOCOLS, Conn, FaultServer, canned, canned_stream, good_request, sse_blocks

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


class Errors:
    """An addon that keeps every (kind, message) agentwrap reports."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def error(self, flow, kind: str, message: str) -> None:
        self.seen.append((kind, message))


def _closed_within(s: socket.socket, seconds: float) -> bool:
    """Whether the proxy closes `s` (EOF or reset) within `seconds`; what it sends first is skipped."""
    s.settimeout(seconds)
    try:
        while s.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


def _one_request(s: socket.socket, secret: str) -> bytes:
    """A whole model call on `s`, kept alive; its answer's bytes (a Content-Length answer)."""
    path, body = good_request("anthropic_messages", False)
    data = json.dumps(body).encode()
    s.sendall(f"POST /{secret}{path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-api-key: {secret}\r\n"
              f"content-length: {len(data)}\r\n\r\n".encode() + data)
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _content_length(answer):
        answer += s.recv(65536)
    return answer


def test_a_connection_without_a_whole_head_in_time_is_closed(fault_server, route_proxy, printed) -> None:
    """Item 3's timeouts: no byte at all, or a head still unfinished (a byte now and then), past
    the head timeout: closed without an answer, and nothing is printed or recorded."""
    up = fault_server()
    proxy = route_proxy("anthropic_messages", "passthrough", up.url)
    proxy.server.head_timeout_s = 0.4
    proxy.dispatcher.addons.add(errors := Errors())
    silent = socket.create_connection(("127.0.0.1", proxy.port))
    slow = socket.create_connection(("127.0.0.1", proxy.port))
    slow.sendall(b"POST /v1/messages HTTP/1.1\r\nx-slow: ")
    for _ in range(3):
        time.sleep(0.1)
        slow.sendall(b"a")  # bytes keep coming; the head never ends
    with silent, slow:
        assert _closed_within(silent, 2) and _closed_within(slow, 2)
    assert raw_call(proxy.base_url, proxy.secret, "anthropic_messages", False).status == 200
    assert errors.seen == [] and printed() == ""


def test_a_kept_alive_connection_may_idle_past_the_head_timeout(fault_server, route_proxy) -> None:
    """Between requests a connection may wait the idle timeout (the head timeout starts at its
    next request's first byte); past that it is closed."""
    up = fault_server()
    proxy = route_proxy("anthropic_messages", "passthrough", up.url)
    proxy.server.head_timeout_s, proxy.server.idle_timeout_s = 0.3, 1.2
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        assert b" 200 " in _one_request(s, proxy.secret).split(b"\r\n", 1)[0]
        time.sleep(0.6)  # longer than the head timeout, shorter than the idle one
        assert b" 200 " in _one_request(s, proxy.secret).split(b"\r\n", 1)[0]
        started = time.monotonic()
        assert _closed_within(s, 3)
        assert 1.0 < time.monotonic() - started < 2.5


def test_at_the_connection_limit_a_connection_without_a_request_goes_first(fault_server, route_proxy, printed) -> None:
    """Item 3's limit: a connection beyond the limit closes the oldest connection that has sent no
    whole request (not an older kept-alive one the agent may reuse); one serving a stream stays,
    and its stream completes."""
    up = fault_server(_slow_stream(30, 0.02))
    proxy = route_proxy("anthropic_messages", "passthrough", up.url)
    proxy.server.connections.limit = 4
    got: dict[str, bytes] = {}

    def stream() -> None:
        got["stream"] = raw_call(proxy.base_url, proxy.secret, "anthropic_messages", True).body

    kept = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    fresh: list[socket.socket] = []
    streamer = threading.Thread(target=stream)
    try:
        assert b" 200 " in _one_request(kept, proxy.secret).split(b"\r\n", 1)[0]  # served, now idle
        streamer.start()
        deadline = time.monotonic() + 5
        while not up.state.get("sent") and time.monotonic() < deadline:
            time.sleep(0.01)  # the stream is being served: its connection is busy
        for _ in range(3):  # the third is one over the limit: the oldest of the other two goes
            fresh.append(socket.create_connection(("127.0.0.1", proxy.port)))
            time.sleep(0.1)
        assert _closed_within(fresh[0], 2)
        assert not _closed_within(fresh[1], 0.2) and not _closed_within(kept, 0.1)
        fresh[2].settimeout(5)
        assert b" 200 " in _one_request(fresh[2], proxy.secret).split(b"\r\n", 1)[0]
        assert b" 200 " in _one_request(kept, proxy.secret).split(b"\r\n", 1)[0]
    finally:
        for s in [kept, *fresh]:
            s.close()
    streamer.join(10)
    assert b"message_stop" in got["stream"][-300:]
    assert printed() == ""


def test_accept_out_of_descriptors_is_recorded_not_printed(fault_server, route_proxy, printed) -> None:
    """What asyncio reports when accept() runs out of descriptors (it retries a second later)
    goes into the record, never onto the agent's terminal."""
    import errno

    up = fault_server()
    proxy = route_proxy("anthropic_messages", "passthrough", up.url)
    proxy.dispatcher.addons.add(errors := Errors())
    loop = proxy.server._loop
    context = {"message": "socket.accept() out of system resource", "exception": OSError(errno.EMFILE, "Too many open files")}
    loop.call_soon_threadsafe(loop.call_exception_handler, context)
    deadline = time.monotonic() + 2
    while not errors.seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert errors.seen == [("connection", "agentwrap: cannot accept a connection (Too many open files); retrying in 1 s")]
    assert printed() == ""


# -- the request head ----------------------------------------------------------------------

ITEM12 = "hardening item 12: the 64 KiB head limit applies only to heads split over several reads"


@pytest.mark.parametrize("split", [False, True],
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
    """Every streamed answer is `events` events `gap_s` apart (state["sent"] counts them); a whole one comes at once."""
    async def handler(conn: Conn) -> None:
        from agentwrap.protocols.endpoints import classify

        while (req := await conn.request()) is not None:  # keep-alive: until the proxy closes
            protocol = classify(req.path).protocol
            if not (json.loads(req.body).get("stream") is True or "streamGenerateContent" in req.path):
                conn.whole(200, *canned(protocol, False))
                await conn.drain()
                continue
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

    return handler


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


def test_a_dropped_stream_is_recorded_as_agent_left_not_as_an_error(fault_server, route_proxy, tmp_path) -> None:
    """Item 2's record: the flow gets one `agent_left` error, and the bundle an `error` item of
    that kind in a finished exchange; neither the run's error count nor the bundle's counts it
    (leaving is the agent's choice: a user interrupting a turn)."""
    from agentwrap.capture.reader import read_bundle
    from agentwrap.capture.recorder import Capture, Recorder

    up: FaultServer = fault_server(_slow_stream(DROP_EVENTS, DROP_EVENT_GAP_S))
    proxy = route_proxy("anthropic_messages", "translated", up.url)
    proxy.dispatcher.addons.add(errors := Errors())
    recorder = Recorder(str(tmp_path / "run.cbor"), {"agent": "claude"}, [])
    proxy.dispatcher.addons.add(Capture(recorder))
    path, body = good_request("anthropic_messages", True)
    with httpx.Client(timeout=10) as client:
        with client.stream("POST", proxy.base_url + path, json=body, headers=auth_headers("anthropic_messages", proxy.secret)) as r:
            next(r.iter_raw())
    deadline = time.monotonic() + 2
    while not errors.seen and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # the relay's end (the exchange's `end`) follows the report
    recorder.close({})
    assert [kind for kind, _ in errors.seen] == ["agent_left"]
    assert proxy.stats.agent_left == 1 and proxy.stats.errors == 0
    bundle = read_bundle(tmp_path / "run.cbor")
    (exchange,) = bundle.exchanges
    assert [e.kind for e in exchange.errors] == ["agent_left"] and exchange.complete
    assert bundle.footer["totals"]["errors"] == 0 and bundle.footer["totals"]["unfinished"] == 0


def _silent_stream(silence_s: float):
    """One event, then `silence_s` without a byte (a model thinking), then the rest; the
    handler ends at once when the proxy closes the connection meanwhile."""
    async def handler(conn: Conn) -> None:
        req = await conn.request()
        if req is None:
            return
        from agentwrap.protocols.endpoints import classify

        ctype, data = canned_stream(classify(req.path).protocol, ["thinking", " done"])
        first, *rest = sse_blocks(data)
        conn.head(200, [("content-type", ctype)])
        conn.chunk(first)
        await conn.drain()
        if await conn.peer_closed(silence_s):
            return
        for block in rest:
            conn.chunk(block)
        conn.end_chunks()
        await conn.drain()
        await conn.request()

    return handler


@pytest.mark.parametrize("route", ["passthrough", "translated"])
def test_an_agent_leaving_while_the_model_is_silent_closes_the_upstream(route: str, fault_server, route_proxy, printed) -> None:
    """The agent closes its connection while the upstream sends nothing (a long think): there is
    no write to fail, yet agentwrap closes the upstream connection within 1 s."""
    up: FaultServer = fault_server(_silent_stream(10))
    proxy = route_proxy("anthropic_messages", route, up.url)
    path, body = good_request("anthropic_messages", True)
    data = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(f"POST /{proxy.secret}{path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                  f"x-api-key: {proxy.secret}\r\ncontent-length: {len(data)}\r\n\r\n".encode() + data)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += s.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 ")
        time.sleep(0.2)
        s.setblocking(False)
        try:
            while s.recv(65536):  # read what came, so the close is a FIN, not a reset
                pass
        except BlockingIOError:
            pass
    dropped_at = time.monotonic()
    deadline = dropped_at + UPSTREAM_CLOSE_BOUND_S
    while 0 not in up.closed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert 0 in up.closed, f"the upstream connection was still open {UPSTREAM_CLOSE_BOUND_S:g} s after the agent left"
    assert proxy.stats.agent_left == 1 and printed() == ""


def _thinking_upstream(think_s: float):
    """Every answer comes after `think_s` of silence, and a stream falls silent as long again after its first event."""
    async def handler(conn: Conn) -> None:
        from agentwrap.protocols.endpoints import classify

        while (req := await conn.request()) is not None:
            protocol = classify(req.path).protocol
            stream = json.loads(req.body).get("stream") is True
            await asyncio.sleep(think_s)
            if not stream:
                conn.whole(200, *canned(protocol, False))
                await conn.drain()
                continue
            ctype, data = canned_stream(protocol, ["thought", " long"])
            first, *rest = sse_blocks(data)
            conn.head(200, [("content-type", ctype)])
            conn.chunk(first)
            await conn.drain()
            await asyncio.sleep(think_s)
            for block in rest:
                conn.chunk(block)
            conn.end_chunks()
            await conn.drain()

    return handler


def test_inbound_timeouts_never_cut_an_answer_in_progress(fault_server, route_proxy) -> None:
    """Inbound timeouts run only while a request head is awaited: a model that takes longer
    than both before its first byte, and falls as silent mid-stream, still reaches the agent whole."""
    up = fault_server(_thinking_upstream(1.0))
    proxy = route_proxy("anthropic_messages", "passthrough", up.url)
    proxy.server.head_timeout_s, proxy.server.idle_timeout_s = 0.2, 0.4
    whole = raw_call(proxy.base_url, proxy.secret, "anthropic_messages", False)
    assert whole.status == 200 and json.loads(whole.body)["content"][0]["text"] == "Hello from the fault server."
    streamed = raw_call(proxy.base_url, proxy.secret, "anthropic_messages", True)
    assert streamed.status == 200 and streamed.elapsed_s > 2 and b"message_stop" in streamed.body[-300:]


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
