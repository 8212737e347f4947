"""A short load run through one proxy (in its own process, so its descriptors and memory
are its own): 256 concurrent streams and a few thousand sequential requests, twice.

The first round warms up (imports, the upstream pool, allocator arenas); the second
must leave no trace: no error, no descriptor more, memory growth bounded, p99 bounded.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import statistics
import time

import psutil
import pytest

from tests.reliability.clients import auth_headers, stream_turn
from tests.reliability.faults import good_request

pytestmark = pytest.mark.reliability

CONCURRENT_STREAMS = 256
SEQUENTIAL_REQUESTS = int(os.environ.get("RELIABILITY_LOAD_REQUESTS", "2000"))  # the attack run: 20000
SEQUENTIAL_P99_BOUND_S = 0.1
STREAM_P99_BOUND_S = 10.0
RSS_GROWTH_BOUND = 16 * 1024 * 1024
PROTOCOL = "anthropic_messages"


async def _stream_once(port: int, target: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, float]:
    """One streamed call on its own connection, with a hand-written HTTP/1.1 client."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = [f"POST {target} HTTP/1.1", "host: 127.0.0.1", f"content-length: {len(body)}",
                *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        writer.write("\r\n".join(head).encode() + body)
        response_head = await reader.readuntil(b"\r\n\r\n")
        status = int(response_head.split(b" ", 2)[1])
        data = bytearray()
        if b"transfer-encoding: chunked" in response_head.lower():
            while True:
                size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
                data += await reader.readexactly(size + 2)
                del data[-2:]
                if size == 0:
                    break
        else:
            length = next(int(line.split(b":")[1]) for line in response_head.lower().split(b"\r\n") if line.startswith(b"content-length"))
            data += await reader.readexactly(length)
        return status, bytes(data), time.monotonic() - started
    finally:
        writer.close()
        await writer.wait_closed()


async def _concurrent(port: int, target: str, body: bytes, headers: dict[str, str], n: int) -> list:
    return await asyncio.gather(*(_stream_once(port, target, body, headers) for _ in range(n)), return_exceptions=True)


def _sequential(port: int, target: str, body: bytes, headers: dict[str, str], n: int) -> tuple[list[float], list[str]]:
    """n calls on one keep-alive connection, as an agent makes them; (latencies, errors)."""
    latencies, errors = [], []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(n):
            started = time.monotonic()
            conn.request("POST", target, body, headers)
            resp = conn.getresponse()
            data = resp.read()
            latencies.append(time.monotonic() - started)
            if resp.status != 200 or json.loads(data).get("type") != "message":
                errors.append(f"{resp.status}: {data[:200]!r}")
    finally:
        conn.close()
    return latencies, errors


def _settled(proc: psutil.Process) -> tuple[int, int]:
    time.sleep(0.5)  # closes in flight land
    return proc.num_fds(), proc.memory_info().rss


def test_load_leaves_no_trace(fault_server, proxy_process) -> None:
    up = fault_server()
    proxy = proxy_process(PROTOCOL, "passthrough", up.url)
    proc = psutil.Process(proxy.pid)
    path, stream_body = good_request(PROTOCOL, True)
    _, whole_body = good_request(PROTOCOL, False)
    target = f"/{proxy.secret}{path}"
    headers = {"content-type": "application/json", **auth_headers(PROTOCOL, proxy.secret)}
    stream_data, whole_data = json.dumps(stream_body).encode(), json.dumps(whole_body).encode()

    rounds = []
    for n_sequential in (SEQUENTIAL_REQUESTS // 4, SEQUENTIAL_REQUESTS):
        started = time.monotonic()
        streams = asyncio.run(_concurrent(proxy.port, target, stream_data, headers, CONCURRENT_STREAMS))
        streams_s = time.monotonic() - started
        latencies, errors = _sequential(proxy.port, target, whole_data, headers, n_sequential)
        for result in streams:
            if isinstance(result, BaseException):
                errors.append(f"stream: {result!r}")
                continue
            status, data, _ = result
            if status != 200:
                errors.append(f"stream status {status}: {data[:200]!r}")
                continue
            try:
                assert stream_turn(PROTOCOL, data).stop == "end_turn"
            except Exception as exc:
                errors.append(f"stream invalid: {exc}")
        stream_latencies = sorted(r[2] for r in streams if not isinstance(r, BaseException))
        rounds.append({
            "errors": errors, "streams_s": streams_s,
            "stream_p99": stream_latencies[int(len(stream_latencies) * 0.99) - 1] if stream_latencies else None,
            "p50": statistics.median(latencies), "p99": sorted(latencies)[int(len(latencies) * 0.99) - 1],
            "fds_rss": _settled(proc),
        })
    err = proxy.stop()
    warm, measured = rounds
    (fds_warm, rss_warm), (fds_after, rss_after) = warm["fds_rss"], measured["fds_rss"]
    summary = (f"streams {measured['streams_s']:.2f} s (p99 {measured['stream_p99']:.2f} s), sequential p50 "
               f"{measured['p50'] * 1000:.1f} ms p99 {measured['p99'] * 1000:.1f} ms, fds {fds_warm}->{fds_after}, "
               f"rss {rss_warm >> 20}->{rss_after >> 20} MiB")
    print(summary)
    assert warm["errors"] == [] and measured["errors"] == [], (warm["errors"] + measured["errors"])[:5]
    assert fds_after <= fds_warm, f"descriptors leaked: {summary}"
    assert rss_after - rss_warm < RSS_GROWTH_BOUND, f"memory grew: {summary}"
    assert measured["p99"] < SEQUENTIAL_P99_BOUND_S, summary
    assert measured["stream_p99"] < STREAM_P99_BOUND_S, summary
    assert err == "", f"the proxy printed:\n{err[:2000]}"


# Python memory the proxy's own code keeps per answered request, at most (the session's
# counts for the summary line: 32 bytes of usage a request; F6 kept ~400).
RETAINED_PER_REQUEST = 64


def test_answered_requests_leave_bounded_memory_behind(fault_server, route_proxy) -> None:
    """Memory allocated by agentwrap's code and still held after a few thousand requests, per
    request (tracemalloc, the proxy in this process; the fault upstream's own records aside)."""
    import gc
    import tracemalloc

    up = fault_server()
    proxy = route_proxy(PROTOCOL, "passthrough", up.url)
    path, whole_body = good_request(PROTOCOL, False)
    headers = {"content-type": "application/json", **auth_headers(PROTOCOL, proxy.secret)}
    target, data = f"/{proxy.secret}{path}", json.dumps(whole_body).encode()
    _, errors = _sequential(proxy.port, target, data, headers, 200)  # warm: imports, pools, caches
    n = 1000
    tracemalloc.start(16)
    try:
        gc.collect()
        before = tracemalloc.take_snapshot()
        _, more = _sequential(proxy.port, target, data, headers, n)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert errors == [] and more == [], (errors + more)[:3]

    def ours(stat) -> bool:
        files = [frame.filename for frame in stat.traceback]
        return any("/agentwrap/" in f for f in files) and not any("/tests/" in f for f in files)

    kept = [s for s in after.compare_to(before, "traceback") if s.size_diff > 0 and ours(s)]
    total = sum(s.size_diff for s in kept)
    top = "\n".join(f"{s.size_diff} B in {s.count_diff} blocks at {s.traceback.format()[-2:]}" for s in kept[:3])
    assert total < RETAINED_PER_REQUEST * n, f"{total / n:.0f} bytes kept per request:\n{top}"


# A long stream read in large pieces: what the proxy holds at its peak, at most (the session's
# counts keep a long answer's first MiB and last 8 MiB for its usage; F8 kept all of it).
LONG_STREAM_BLOCKS = 1024  # of 64 KiB: 64 MiB
LONG_STREAM_PEAK_BOUND = 40 * 1024 * 1024


def test_a_long_stream_keeps_bounded_memory(fault_server, route_proxy) -> None:
    """One 64 MiB stream through the proxy in this process, sent in 64 KiB chunks: the peak of
    Python memory allocated while it runs stays well under the stream's size."""
    import tracemalloc

    from tests.reliability.faults import Conn

    def block(i: int) -> bytes:  # ~500 text deltas, none like another (no loop for the guard)
        out, n = [], 0
        while n < 65536:
            ev = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                  b'"delta":{"type":"text_delta","text":"w%d.%d "}}\n\n' % (i, n))
            out.append(ev)
            n += len(ev)
        return b"".join(out)

    blocks = [block(i) for i in range(LONG_STREAM_BLOCKS)]  # made before tracing starts: not counted
    start = (b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_long","type":"message",'
             b'"role":"assistant","model":"m","content":[],"stop_reason":null,"usage":{"input_tokens":3,"output_tokens":1}}}\n\n'
             b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n')
    end = (b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
           b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":999}}\n\n'
           b'event: message_stop\ndata: {"type":"message_stop"}\n\n')

    async def long_stream(conn: Conn) -> None:
        if await conn.request() is None:
            return
        await conn.stream("text/event-stream", [start, *blocks, end])

    up = fault_server(long_stream)
    proxy = route_proxy(PROTOCOL, "passthrough", up.url)
    path, body = good_request(PROTOCOL, True)
    headers = {"content-type": "application/json", **auth_headers(PROTOCOL, proxy.secret)}
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=60)
    tracemalloc.start()
    try:
        conn.request("POST", f"/{proxy.secret}{path}", json.dumps(body).encode(), headers)
        resp = conn.getresponse()
        got, tail = 0, b""
        while piece := resp.read(1 << 16):
            got += len(piece)
            tail = (tail + piece)[-4096:]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        conn.close()
    assert resp.status == 200 and got > LONG_STREAM_BLOCKS * 65536 and b"message_stop" in tail
    assert peak < LONG_STREAM_PEAK_BOUND, f"{peak / 2**20:.0f} MiB at the peak for a {got / 2**20:.0f} MiB stream"
    assert proxy.stats.tokens and proxy.stats.tokens["output_tokens"] == 999, "its usage still read from its end"
