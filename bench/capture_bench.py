#!/usr/bin/env python3
"""Benchmark capture bundles: size against content, proxy-thread cost, writer throughput.

    .venv/bin/python bench/capture_bench.py [--quick] [--json FILE]

(a) Size: a 100-turn session recorded through a real `Recorder` (all four
    legs, an SSE answer per turn), in two shapes from tests/capture/test_capture_shapes.py:
    one ~2 KB message added per turn, and Claude Code's shape (a ~50 KB system +
    tools prefix resent every turn, a tool call and a ~2 KB tool result added
    per turn, `cache_control` moved to the newest message). "unique" is what an
    ideal recorder must keep (`unique_content`: each distinct message and prefix
    once, every response byte, each request's other fields and headers);
    "naive" is every body as sent on both legs plus the responses.
(b) Proxy-thread cost: what `chunk()` and `exchange()` cost their caller, in a
    tight loop (the writer thread running alongside) and spaced out like a real
    stream, next to an empty method call as the floor.
(c) Writer throughput: the sans-IO encoder alone (redaction, dedup, CBOR) and a
    whole Recorder draining to disk.
(d) Whole-process CPU: a real Recorder records a 100-turn Claude-Code-shaped
    session (Claude Code's request headers, the upstream leg with the provider
    key), and the CPU time of the whole process (every thread, and any child
    process) from the Recorder's creation to its closed file is divided by the
    turns: the proxy thread's calls, draining (redaction, deduplication,
    encoding, writes) and any thread wake-ups. Once per request pair
    (request, route, upstream request, end), once per whole exchange (also the
    upstream response head and a ~35-event SSE answer), each with the turns
    20 ms apart (the CPU of the same pauses without recording is subtracted)
    and back to back; per second of a stream at 50 events/s; and the floor of
    the paced figures, an exchange with an empty body and no headers (waking
    up and running cold after a pause costs on this VM what recording a
    request pair costs). Each drained
    from an asyncio loop as the proxy's capture addon does (`LoopDrainer`) and
    by the recorder's own writer thread. Also the idle writer's CPU per second.

Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agentwrap.capture.reader import read_bundle  # noqa: E402
from agentwrap.capture.recorder import Recorder  # noqa: E402
from agentwrap.capture.writer import BundleEncoder  # noqa: E402

try:  # the proxy's way of draining a recorder (absent before it existed: thread figures only)
    from agentwrap.capture.addon import LoopDrainer  # noqa: E402
except ImportError:
    LoopDrainer = None


def WAKE_ARG(on_loop: bool) -> dict:  # noqa: N802
    return {"wake": False} if on_loop else {}


from tests.capture.test_capture_shapes import (  # noqa: E402
    HEADERS,
    PROVIDER_KEY,
    SECRET,
    SSE_HEADERS,
    UPSTREAM_HEADERS,
    anthropic_answer,
    claude_code_bodies,
    record_session,
    synthetic_bodies,
    unique_content,
    words,
)

# The headers of a Claude Code request (2.1.x, API key) and of its upstream copy.
CLAUDE_HEADERS = [(n.encode(), v.encode()) for n, v in [
    ("host", "127.0.0.1:43210"), ("connection", "keep-alive"), ("accept", "application/json"),
    ("x-stainless-retry-count", "0"), ("x-stainless-timeout", "600"), ("x-stainless-lang", "js"),
    ("x-stainless-package-version", "0.60.0"), ("x-stainless-os", "Linux"), ("x-stainless-arch", "x64"),
    ("x-stainless-runtime", "node"), ("x-stainless-runtime-version", "v22.11.0"),
    ("anthropic-dangerous-direct-browser-access", "true"), ("anthropic-version", "2023-06-01"),
    ("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27"),
    ("x-app", "cli"), ("user-agent", "claude-cli/2.1.332 (external, cli)"), ("x-api-key", SECRET),
    ("x-claude-code-session-id", "5f1c0d2e-8a6b-4c3d-9e7f-0a1b2c3d4e5f"), ("content-type", "application/json"),
    ("accept-encoding", "gzip, deflate, br, zstd"), ("content-length", "300000"),
]]
CLAUDE_UPSTREAM_HEADERS = [(n, v) for n, v in CLAUDE_HEADERS if n not in (b"host", b"x-api-key", b"content-length",
                                                                          b"accept-encoding", b"connection")]
CLAUDE_UPSTREAM_HEADERS += [(b"x-api-key", PROVIDER_KEY.encode()), (b"accept-encoding", b"identity")]


def size_rows(tmp: Path, turns: int) -> list[dict]:
    rows = []
    for name, shape in (("one ~2 KB message per turn", synthetic_bodies), ("Claude Code shape, ~50 KB prefix", claude_code_bodies)):
        bodies = list(shape(turns))
        path = tmp / f"size-{shape.__name__}.cbor"
        t0 = time.perf_counter()
        record_session(path, bodies)
        elapsed = time.perf_counter() - t0
        bundle = read_bundle(path)
        response = sum(len(ex.response_body) for ex in bundle.exchanges)
        unique = unique_content(bodies, response, len(bodies))
        naive = 2 * sum(map(len, bodies)) + response
        size = path.stat().st_size
        rows.append({"shape": name, "turns": turns, "bundle_bytes": size, "unique_bytes": unique, "naive_bytes": naive,
                     "ratio_to_unique": size / unique, "naive_over_bundle": naive / size, "record_and_close_s": elapsed})
    return rows


class _Empty:
    def chunk(self, xid: int, data: bytes) -> None:
        pass


def _tight(fn, n: int, repeats: int = 5) -> float:
    best = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        best.append((time.perf_counter_ns() - t0) / n)
    return statistics.median(best)


def _spaced(fn, n: int, gap_s: float = 0.0005) -> float:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        time.sleep(gap_s)
        t0 = clock()
        fn()
        samples.append(clock() - t0)
    return statistics.median(samples)


def caller_rows(tmp: Path, quick: bool) -> dict:
    n = 20_000 if quick else 100_000
    chunk = anthropic_answer("x" * 40)[2]
    body = next(iter(claude_code_bodies(1)))  # ~55 KB
    rec = Recorder(str(tmp / "caller.cbor"), {"agent": "claude"}, [SECRET, PROVIDER_KEY])
    xid = rec.exchange("POST", f"/{SECRET}/v1/messages", HEADERS, body)
    rec.upstream_response(xid, 200, SSE_HEADERS)
    empty = _Empty()
    out = {
        "chunk_tight_ns": _tight(lambda: rec.chunk(xid, chunk), n),
        "empty_call_tight_ns": _tight(lambda: empty.chunk(xid, chunk), n),
        "chunk_spaced_ns": _spaced(lambda: rec.chunk(xid, chunk), 1000 if quick else 4000),
        "empty_call_spaced_ns": _spaced(lambda: empty.chunk(xid, chunk), 1000 if quick else 4000),
        "exchange_tight_ns": _tight(lambda: rec.exchange("POST", f"/{SECRET}/v1/messages", HEADERS, body), n // 20),
        "exchange_body_bytes": len(body),
    }
    rec.end(xid)
    rec.close({})
    return out


def writer_rows(tmp: Path, quick: bool) -> dict:
    chunks = anthropic_answer("hello world " * (2000 if quick else 10000))
    enc = BundleEncoder([SECRET, PROVIDER_KEY])
    enc.header({})
    enc.encode(("request", 1, 0, "POST", "/v1/messages", HEADERS, b"{}"))
    enc.encode(("upstream_response", 1, 0, 200, SSE_HEADERS))
    t0 = time.perf_counter()
    for c in chunks:
        enc.encode(("chunk", 1, 5, c))
    enc.encode(("end", 1, 6))
    chunk_s = time.perf_counter() - t0
    chunk_bytes = sum(map(len, chunks))

    bodies = list(claude_code_bodies(30 if quick else 100))
    enc = BundleEncoder([SECRET, PROVIDER_KEY])
    enc.header({})
    per_request = []
    for i, body in enumerate(bodies):
        t0 = time.perf_counter()
        enc.encode(("request", i, 0, "POST", f"/{SECRET}/v1/messages", HEADERS, body))
        enc.encode(("upstream_request", i, 0, "POST", "https://api.anthropic.com/v1/messages", UPSTREAM_HEADERS, body))
        per_request.append(time.perf_counter() - t0)
        enc.encode(("end", i, 1))

    n = 20_000 if quick else 200_000
    rec = Recorder(str(tmp / "drain.cbor"), {"agent": "claude"}, [SECRET, PROVIDER_KEY])
    xid = rec.exchange("POST", "/v1/messages", HEADERS, b"{}")
    rec.upstream_response(xid, 200, SSE_HEADERS)
    piece = chunks[len(chunks) // 2]
    t0 = time.perf_counter()
    for _ in range(n):
        rec.chunk(xid, piece)
    rec.end(xid)
    rec.close({})
    drain_s = time.perf_counter() - t0
    return {
        "encoder_chunks_per_s": len(chunks) / chunk_s,
        "encoder_chunk_us": chunk_s / len(chunks) * 1e6,
        "encoder_mb_per_s": chunk_bytes / chunk_s / 1e6,
        "mean_chunk_bytes": chunk_bytes / len(chunks),
        "request_pair_ms_median": statistics.median(per_request) * 1e3,
        "request_pair_ms_max": max(per_request) * 1e3,
        "request_body_kb_last": len(bodies[-1]) / 1024,
        "recorder_chunks": n,
        "recorder_enqueue_and_drain_s": drain_s,
        "recorder_chunks_per_s": n / drain_s,
    }


def _process_cpu_s() -> float:
    """CPU time of this process (all threads) and of its waited-for children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


async def _record_turns(path: Path, bodies: list[bytes], answer: list[bytes] | None, gap_s: float, on_loop: bool,
                        chunk_gap_s: float = 0.0, headers: bool = True) -> float:
    """Record one exchange per body through a real Recorder; the process CPU seconds it took.

    `on_loop`: drained from this event loop as the proxy's capture addon does (`LoopDrainer`),
    else by the recorder's own writer thread. Pauses are `asyncio.sleep`s either way."""
    c0 = _process_cpu_s()
    rec = Recorder(str(path), {"agent": "claude", "run_id": "0123abcd"}, [SECRET, PROVIDER_KEY])
    if on_loop:  # as capture.addon.Capture's hooks do
        drainer = LoopDrainer(rec, asyncio.get_running_loop())
        kick, request, ended = drainer.kick, drainer.request, drainer.ended
    else:
        kick = request = ended = lambda stream=False: None  # noqa: E731
    for body in bodies:
        xid = rec.exchange("POST", f"/{SECRET}/v1/messages?beta=true", CLAUDE_HEADERS if headers else [], body,
                           **WAKE_ARG(on_loop))
        request()
        if headers:
            rec.route(xid, {"backend": "anthropic", "model": "claude-sonnet-4-5", "requested_model": "claude-sonnet-4-5",
                            "reason": "default route", "fallbacks": []})
            kick()
            rec.upstream_request(xid, "POST", "https://api.anthropic.com/v1/messages?beta=true", CLAUDE_UPSTREAM_HEADERS, body)
            kick()
        if answer is not None:
            rec.upstream_response(xid, 200, SSE_HEADERS)
            kick(True)
            for c in answer:
                rec.chunk(xid, c)
                kick(True)
                if chunk_gap_s:
                    await asyncio.sleep(chunk_gap_s)
        rec.end(xid)
        ended()
        if gap_s:
            await asyncio.sleep(gap_s)
    rec.close({"exit_code": 0})
    return _process_cpu_s() - c0


async def _sleeps(n: int, gap_s: float) -> float:
    """The process CPU of `n` pauses alone (subtracted from paced figures: ~30-50 us a pause here)."""
    c0 = _process_cpu_s()
    for _ in range(n):
        await asyncio.sleep(gap_s)
    return _process_cpu_s() - c0


def process_rows(tmp: Path, quick: bool) -> dict:
    turns = 30 if quick else 100
    bodies = list(claude_code_bodies(turns))
    import random

    answer = anthropic_answer(words(random.Random(5), 1200), tool=("toolu_1", "Tool0", '{"command":"ls"}'))
    out: dict = {"turns": turns, "answer_chunks": len(answer), "last_body_kb": len(bodies[-1]) / 1024}
    runs = 2 if quick else 3
    modes = [("loop", True), ("thread", False)] if LoopDrainer is not None else [("thread", False)]
    for mode, on_loop in modes:
        for name, ans, gap in (("pair_paced", None, 0.02), ("pair_tight", None, 0.0),
                               ("exchange_paced", answer, 0.02), ("exchange_tight", answer, 0.0)):
            samples = []
            for i in range(runs):
                spent = asyncio.run(_record_turns(tmp / f"cpu-{mode}-{name}-{i}.cbor", bodies, ans, gap, on_loop))
                if gap:
                    spent -= asyncio.run(_sleeps(turns, gap))
                samples.append(spent / turns)
            out[f"{mode}_{name}_ms"] = [x * 1e3 for x in samples]
        # The floor: an exchange with an empty body and no headers, turns 20 ms apart. What it
        # costs is waking up and running cold, not recording.
        samples = []
        for i in range(runs):
            spent = asyncio.run(_record_turns(tmp / f"cpu-{mode}-floor-{i}.cbor", [b"{}"] * turns, None, 0.02, on_loop,
                                              headers=False))
            samples.append((spent - asyncio.run(_sleeps(turns, 0.02))) / turns)
        out[f"{mode}_floor_paced_ms"] = [x * 1e3 for x in samples]
        # One answer streamed at 50 events per second for 2 s (a model writing): CPU per second.
        stream = anthropic_answer(words(random.Random(6), 4000), delta_chars=40)[:100]
        samples = []
        for i in range(runs):
            spent = asyncio.run(_record_turns(tmp / f"cpu-{mode}-stream-{i}.cbor", bodies[:1], stream, 0.0, on_loop, 0.02))
            spent -= asyncio.run(_sleeps(len(stream), 0.02))
            samples.append(spent / (len(stream) * 0.02))
        out[f"{mode}_stream_ms_per_s"] = [x * 1e3 for x in samples]
    rec = Recorder(str(tmp / "idle.cbor"), {"agent": "claude"}, [SECRET])
    time.sleep(0.05)
    c0, t0 = _process_cpu_s(), time.perf_counter()
    time.sleep(1.0)
    out["idle_cpu_ms_per_s"] = (_process_cpu_s() - c0) * 1e3 / (time.perf_counter() - t0)
    rec.close({})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (~5 s)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sizes = size_rows(tmp, 100)
        caller = caller_rows(tmp, args.quick)
        writer = writer_rows(tmp, args.quick)
        process = process_rows(tmp, args.quick)

    print(f"capture bench  (Python {sys.version.split()[0]}, {os.cpu_count()} cpus{', quick' if args.quick else ''})\n")
    print("(a) bundle size, 100-turn session, all four legs recorded")
    for r in sizes:
        print(f"  {r['shape']:<34} bundle {r['bundle_bytes'] / 1e3:8.1f} kB   unique {r['unique_bytes'] / 1e3:8.1f} kB   "
              f"ratio {r['ratio_to_unique']:.3f}x   naive {r['naive_bytes'] / 1e6:6.1f} MB ({r['naive_over_bundle']:.0f}x the bundle)")
    print("\n(b) proxy-thread cost per call (median)")
    print(f"  chunk(), tight loop            {caller['chunk_tight_ns'] / 1e3:6.2f} us   (empty method call {caller['empty_call_tight_ns'] / 1e3:.2f} us)")
    print(f"  chunk(), spaced 0.5 ms apart   {caller['chunk_spaced_ns'] / 1e3:6.2f} us   (empty method call {caller['empty_call_spaced_ns'] / 1e3:.2f} us)")
    print(f"  exchange(), {caller['exchange_body_bytes'] / 1024:.0f} KB body       {caller['exchange_tight_ns'] / 1e3:6.2f} us")
    print("\n(c) writer thread")
    print(f"  encoder, SSE chunks of {writer['mean_chunk_bytes']:.0f} B     {writer['encoder_chunk_us']:6.2f} us/chunk   "
          f"{writer['encoder_chunks_per_s'] / 1e3:.0f}k chunks/s   {writer['encoder_mb_per_s']:.0f} MB/s")
    print(f"  encoder, request + upstream request (Claude Code shape, up to {writer['request_body_kb_last']:.0f} KB): "
          f"median {writer['request_pair_ms_median']:.2f} ms, max {writer['request_pair_ms_max']:.2f} ms")
    print(f"  Recorder, {writer['recorder_chunks']:,} chunks enqueued, drained to disk and closed: "
          f"{writer['recorder_enqueue_and_drain_s']:.2f} s ({writer['recorder_chunks_per_s'] / 1e3:.0f}k chunks/s)")
    p = process
    spread = lambda xs: f"{min(xs):.3f}-{max(xs):.3f} ms" if len(xs) > 1 else f"{xs[0]:.3f} ms"  # noqa: E731
    print(f"\n(d) whole-process CPU, writer included ({p['turns']} Claude-Code-shaped turns, "
          f"bodies up to {p['last_body_kb']:.0f} KB; spread of runs)")
    for mode, label in (("loop", "drained by the event loop (the proxy's capture addon)"),
                        ("thread", "drained by the recorder's writer thread (no event loop)")):
        if f"{mode}_pair_tight_ms" not in p:
            print(f"  {label}: not in this tree")
            continue
        print(f"  {label}")
        print(f"    per Claude-Code-shaped request pair, turns 20 ms apart   {spread(p[mode + '_pair_paced_ms'])}")
        print(f"    per Claude-Code-shaped request pair, back to back        {spread(p[mode + '_pair_tight_ms'])}")
        print(f"    per whole exchange ({p['answer_chunks']}-event answer), 20 ms apart   {spread(p[mode + '_exchange_paced_ms'])}")
        print(f"    per whole exchange, back to back                         {spread(p[mode + '_exchange_tight_ms'])}")
        print(f"    a stream of 50 events/s, per second streamed             {spread(p[mode + '_stream_ms_per_s'])}")
        print(f"    (floor: an empty exchange, no headers, 20 ms apart       {spread(p[mode + '_floor_paced_ms'])})")
    print(f"  idle Recorder, writer thread (no exchange open)          {p['idle_cpu_ms_per_s']:.2f} ms of CPU per second")
    if args.json:
        Path(args.json).write_text(json.dumps({"size": sizes, "caller": caller, "writer": writer, "process": process}, indent=2))


if __name__ == "__main__":
    main()
