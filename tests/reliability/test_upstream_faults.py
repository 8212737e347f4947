"""The upstream fault matrix: every way an upstream can break, for every front-end
protocol, on pass-through and translated routes, streamed and whole.

Each case runs twice, once with a raw client that keeps the bytes (judged by
`clients.judge_raw`: an error status in the protocol's shape, or a stream that
ends grammar-valid, with the protocol's error event when the upstream broke)
and once with the protocol's official SDK (judged by `SdkOutcome`: a complete
answer, an error status or error event, never a crash, never a silent
truncation). Neither may hang, see the provider key, or make agentwrap print.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from agentwrap.protocols.endpoints import classify
from tests.reliability.clients import error_shape_problem, judge_raw, leaks, raw_call, sdk_call
from tests.reliability.conftest import UP_KEY
from tests.reliability.faults import PROTOCOLS, Conn, canned, canned_stream, closed_port, good_request, sse_blocks

pytestmark = pytest.mark.reliability

SLOW_TIMEOUT_S = 0.3  # the backend's timeout_s in the slow cases
HUGE_WHOLE_BYTES = 4 * 1024 * 1024
HUGE_STREAM_EVENTS = 2000


async def _read(conn: Conn) -> tuple[str, bool] | None:
    """Read the proxy's request; (backend protocol, streamed?) from its path and body."""
    req = await conn.request()
    if req is None:
        return None
    endpoint = classify(req.path)
    protocol = endpoint.protocol
    assert protocol is not None, req.path
    stream = bool(endpoint.stream) if protocol == "gemini" else json.loads(req.body).get("stream") is True
    return protocol, stream


def _error_body(protocol: str, message: str) -> bytes:
    if protocol == "anthropic_messages":
        return json.dumps({"type": "error", "error": {"type": "authentication_error", "message": message}}).encode()
    if protocol == "gemini":
        return json.dumps({"error": {"code": 401, "message": message, "status": "UNAUTHENTICATED"}}).encode()
    return json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}}).encode()


# -- the faults: each a handler script ---------------------------------------------------


async def reset_before_head(conn: Conn) -> None:
    await _read(conn)
    conn.reset()


async def reset_mid_body(conn: Conn) -> None:
    protocol, stream = await _read(conn)
    ctype, data = canned(protocol, stream)
    if stream:
        blocks = sse_blocks(data)
        conn.head(200, [("content-type", ctype)])
        for block in blocks[: len(blocks) // 2]:
            conn.chunk(block)
    else:
        conn.head(200, [("content-type", ctype)], length=len(data))
        conn.send(data[: len(data) // 2])
    await conn.drain()
    await asyncio.sleep(0.05)
    conn.reset()


def _stream_with(make_blocks: Callable[[str, list[bytes]], list[bytes]]):
    async def handler(conn: Conn) -> None:
        protocol, stream = await _read(conn)
        ctype, data = canned(protocol, stream)
        assert stream
        await conn.stream(ctype, make_blocks(protocol, sse_blocks(data)))

    return handler


def _bad_json_line(protocol: str, blocks: list[bytes]) -> list[bytes]:
    event = {"anthropic_messages": b"event: content_block_delta\n", "openai_responses": b"event: response.output_text.delta\n"}
    return [*blocks[:3], event.get(protocol, b"") + b'data: {"type": "content_block_delta", oops\n\n', *blocks[3:]]


# A clean end of the body (last chunk and all) after half the events: no stop, no final event.
no_final_event = _stream_with(lambda p, b: b[: len(b) // 2])
cut_mid_event = _stream_with(lambda p, b: [*b[:3], b[3][: len(b[3]) // 2]])
garbage_in_stream = _stream_with(lambda p, b: [*b[:3], b"\xff\xfe\x00\x80 garbage \xc3\x28\n\n", *b[3:]])
bad_json_line = _stream_with(_bad_json_line)


async def garbage_whole(conn: Conn) -> None:
    await _read(conn)
    conn.whole(200, "application/json", b"\xff\xfe\x00 this is not JSON {")
    await conn.drain()


async def slow(conn: Conn) -> None:
    """Stall past the backend's timeout: before the head (whole) or mid-stream."""
    protocol, stream = await _read(conn)
    if stream:
        ctype, data = canned(protocol, stream)
        conn.head(200, [("content-type", ctype)])
        conn.chunk(sse_blocks(data)[0])
        await conn.drain()
    await asyncio.sleep(SLOW_TIMEOUT_S * 10)


async def huge(conn: Conn) -> None:
    protocol, stream = await _read(conn)
    if stream:
        ctype, data = canned_stream(protocol, [f"{i:05d}" + "x" * 1018 for i in range(HUGE_STREAM_EVENTS)])
        body = sse_blocks(data)
        await conn.stream(ctype, body)
    else:
        ctype, data = canned(protocol, False, "x" * HUGE_WHOLE_BYTES)
        conn.whole(200, ctype, data)
        await conn.drain()


async def key_in_error(conn: Conn) -> None:
    """A 401 naming the key it was sent, in the body and in www-authenticate."""
    protocol, _ = await _read(conn)
    body = _error_body(protocol, f"Incorrect API key provided: {UP_KEY}. You can find your key at example.com.")
    conn.whole(401, "application/json", body,
               [("www-authenticate", f'Bearer realm="api", error="invalid_token", error_description="key {UP_KEY} is revoked"')])
    await conn.drain()


async def key_in_answer(conn: Conn) -> None:
    """The model repeats the key (a prompt-injected or misconfigured upstream)."""
    protocol, stream = await _read(conn)
    ctype, data = canned(protocol, stream, f"The key I was called with is {UP_KEY}, here it is again: {UP_KEY}")
    if stream:
        await conn.stream(ctype, sse_blocks(data))
    else:
        conn.whole(200, ctype, data)
        await conn.drain()


@dataclass(frozen=True)
class Fault:
    name: str
    handler: Callable | None  # None: nothing listens (connection refused)
    modes: tuple[bool, ...]  # streamed? True / False
    failed: bool = True  # the upstream broke: a complete answer would be a lie
    timeout_s: float | None = None


FAULTS = [
    Fault("connection_refused", None, (True, False)),
    Fault("reset_before_head", reset_before_head, (True, False)),
    Fault("reset_mid_body", reset_mid_body, (True, False)),
    Fault("stream_without_final_event", no_final_event, (True,)),
    Fault("stream_cut_mid_event", cut_mid_event, (True,)),
    Fault("garbage_bytes", garbage_in_stream, (True,)),
    Fault("garbage_body", garbage_whole, (False,)),
    Fault("invalid_json_data_line", bad_json_line, (True,)),
    Fault("slow_past_timeout", slow, (True, False), timeout_s=SLOW_TIMEOUT_S),
    Fault("huge_body", huge, (True, False), failed=False),
    Fault("key_echoed_in_error", key_in_error, (True, False)),
    Fault("key_echoed_in_answer", key_in_answer, (True, False), failed=False),
]

ITEM4 = "hardening item 4: a pass-through stream that ends invalidly reaches the agent as it came"
ITEM11 = "hardening item 11: a key the upstream echoes reaches the agent"
F1 = ("finding F1 (item 4's twin for whole answers): a pass-through 200 whose body is not JSON is relayed as it "
      "came, and every official SDK raises JSONDecodeError on it")
F2 = ("finding F2: the response.failed event agentwrap appends to a broken pass-through Responses stream has no "
      "sequence_number, id, created_at or model (protocols/codec.py stream_error)")
# Known failures: (fault, route or None for both, protocol or None for all, streamed or None for both) -> reason.
XFAIL: dict[tuple[str, str | None, str | None, bool | None], str] = {}


def _cases():
    for fault in FAULTS:
        for route in ("passthrough", "translated"):
            for protocol in PROTOCOLS:
                for stream in fault.modes:
                    reason = next((r for (f, rt, p, s), r in XFAIL.items()
                                   if f == fault.name and rt in (None, route) and p in (None, protocol) and s in (None, stream)), None)
                    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                    yield pytest.param(fault, route, protocol, stream, marks=marks,
                                       id=f"{fault.name}-{route}-{protocol}-{'stream' if stream else 'whole'}")


@pytest.mark.parametrize(("fault", "route", "protocol", "stream"), list(_cases()))
def test_upstream_fault(fault: Fault, route: str, protocol: str, stream: bool, fault_server, route_proxy, printed) -> None:
    if fault.handler is None:
        url = f"http://127.0.0.1:{closed_port()}"
    else:
        url = fault_server(fault.handler).url
    proxy = route_proxy(protocol, route, url, timeout_s=fault.timeout_s)
    # A whole body cut after its head went out can only be signalled by cutting the connection.
    cut_allowed = fault.name == "reset_mid_body" and not stream and route == "passthrough"

    problems: list[str] = []
    raw = raw_call(proxy.base_url, proxy.secret, protocol, stream)
    try:
        seen = judge_raw(protocol, stream, raw, failed=fault.failed, cut_allowed=cut_allowed)
    except Exception as exc:  # a GrammarError, or the bytes do not even parse (UpstreamProtocol, ValueError, KeyError)
        problems.append(f"raw client: {type(exc).__name__}: {exc}")
        seen = "invalid"
    if raw.elapsed_s >= 10:
        problems.append(f"raw client: answered after {raw.elapsed_s:.1f} s")
    if found := leaks(raw, UP_KEY, proxy.secret):
        problems.append(f"raw client: the answer ({seen}) carries {'the provider key' if UP_KEY in found else 'the session secret'}")

    try:
        sdk = sdk_call(protocol, proxy.base_url, proxy.secret, stream)
    except Exception as exc:  # anything but the SDK's own error types is a client crash
        problems.append(f"SDK crashed: {type(exc).__name__}: {exc}"[:500])
    else:
        if fault.failed:
            allowed = {"status_error", "stream_error"} | ({"connection_error"} if cut_allowed else set())
        else:
            allowed = {"complete"}
        if sdk.kind == "truncated":
            problems.append(f"SDK: silent truncation, an incomplete answer looked complete ({sdk.text[:80]!r})")
        elif sdk.kind not in allowed:
            problems.append(f"SDK: {sdk.kind} ({sdk.detail[:200]})")
        if UP_KEY in sdk.text or UP_KEY in sdk.detail:
            problems.append("SDK: the provider key reached the client")

    if err := printed():
        problems.append(f"agentwrap printed on stderr: {err[:1000]}")
    assert not problems, "\n".join(problems)


# -- a POST that reaches the upstream twice (hardening item 7) --------------------------------

ITEM7 = ("hardening item 7: a reused keep-alive connection reset after the upstream read the request is retried, "
         "so the POST reaches the upstream twice")


async def reset_second_request(conn: Conn) -> None:
    """The first request on a connection is answered (keep-alive); the second is read in full
    and the connection reset, as an upstream that crashed while generating does. A retry on a
    new connection would be answered."""
    first = await _read(conn)
    if first is None:
        return
    protocol, stream = first
    ctype, data = canned(protocol, False)
    conn.whole(200, ctype, data)
    await conn.drain()
    if conn.index == 0 and await conn.request() is not None:
        conn.reset()
        return
    while await _read(conn) is not None:
        conn.whole(200, ctype, data)
        await conn.drain()


@pytest.mark.parametrize("route", ["passthrough", "translated"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_post_reaches_the_upstream_once(protocol: str, route: str, fault_server, route_proxy) -> None:
    up = fault_server(reset_second_request)
    proxy = route_proxy(protocol, route, up.url)
    first = raw_call(proxy.base_url, proxy.secret, protocol, False)
    assert first.status == 200
    second = raw_call(proxy.base_url, proxy.secret, protocol, False)
    if second.status is not None and second.status >= 400:
        assert error_shape_problem(protocol, second.body) is None
    assert len(up.requests) == 2, (f"the second POST reached the upstream {len(up.requests) - 1} times "
                                   f"(the agent got {second.status})")


# -- a huge whole answer on a translated route (hardening item 6) ------------------------------

ITEM6 = "hardening item 6: a translated whole answer is held whole in memory (a 200 MB answer took 1+ GB)"
HUGE_ANSWER_BYTES = 200 * 1024 * 1024
MEMORY_GROWTH_BOUND = 256 * 1024 * 1024


async def two_hundred_mb(conn: Conn) -> None:
    """A valid whole answer whose text is 200 MB, written a megabyte at a time."""
    while (got := await _read(conn)) is not None:
        protocol, _ = got
        ctype, data = canned(protocol, False, "@@TEXT@@")
        head, tail = data.split(b"@@TEXT@@")
        conn.head(200, [("content-type", ctype)], length=len(head) + HUGE_ANSWER_BYTES + len(tail))
        conn.send(head)
        block = b"x" * (1 << 20)
        for _ in range(HUGE_ANSWER_BYTES >> 20):
            conn.send(block)
            await conn.drain()
        conn.send(tail)
        await conn.drain()


def _vm_hwm(pid: int) -> int:
    """Peak resident memory of a process so far (bytes)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("route", ["passthrough", "translated"])
def test_a_200_mb_whole_answer_does_not_take_a_gigabyte(route: str, fault_server, proxy_process) -> None:
    """The client gets the answer (or an error in its protocol) and agentwrap's peak memory grows
    by less than 256 MiB: it never holds a whole huge answer, let alone copies of it."""
    import httpx
    import psutil

    up = fault_server(two_hundred_mb)
    proxy = proxy_process("anthropic_messages", route, up.url)
    rss_before = psutil.Process(proxy.pid).memory_info().rss
    path, body = good_request("anthropic_messages", False)
    received = 0
    with httpx.Client(timeout=60) as client:
        with client.stream("POST", proxy.base_url + path, json=body, headers={"x-api-key": proxy.secret}) as r:
            for piece in r.iter_raw():
                received += len(piece)
                tail = piece[-200:]
            status = r.status_code
    grew = _vm_hwm(proxy.pid) - rss_before
    err = proxy.stop()
    if status == 200:
        assert received > HUGE_ANSWER_BYTES and tail.endswith(b"}")
    else:
        assert status >= 400 and error_shape_problem("anthropic_messages", tail) is None
    assert grew < MEMORY_GROWTH_BOUND, f"agentwrap's peak memory grew by {grew >> 20} MiB for a {HUGE_ANSWER_BYTES >> 20} MB answer"
    assert err == ""


# -- an upstream that never completes the TCP handshake ---------------------------------------

F4 = ("finding F4: docs/profiles.md says a backend's timeout_s bounds the connect too, but the proxy keeps the "
      "transport's 10 s connect timeout (proxy/dispatch.py Dispatcher._timeouts sets first byte and idle only)")


def test_timeout_s_bounds_the_connect(route_proxy) -> None:
    """A listener whose accept queue is full drops SYNs, like a blackholed host: with
    `timeout_s = 1` the agent gets the protocol's timeout error within about a second."""
    import httpx

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):  # fills the queue: later SYNs go unanswered
            proxy = route_proxy("anthropic_messages", "passthrough", f"http://127.0.0.1:{port}", timeout_s=1.0)
            try:
                out = raw_call(proxy.base_url, proxy.secret, "anthropic_messages", False, timeout_s=5)
            except httpx.TimeoutException:
                pytest.fail("no answer within 5 s of a request to a backend with timeout_s = 1")
    assert out.status is not None and out.status >= 500 and error_shape_problem("anthropic_messages", out.body) is None
    assert out.elapsed_s < 2.5, f"answered after {out.elapsed_s:.1f} s"
