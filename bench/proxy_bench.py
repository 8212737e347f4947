#!/usr/bin/env python3
"""Benchmark the real `agentwrap claude` proxy against a direct baseline, in one run.

    python bench/proxy_bench.py [--quick] [--json FILE] [--no-capture] [--translate [chat|responses|gemini]] [--pin CPUS]

Three kinds of process take part:

* a fake upstream (its own process: `--_upstream`), a minimal asyncio HTTP/1.1
  keep-alive server. It answers `POST /v1/messages` (Anthropic Messages) with a
  small JSON body, or, for `"stream": true`, a chunked text/event-stream of
  `"events": N` content_block_delta events (one HTTP chunk and one write per
  event, no sleeps; `"write": "bulk"`: the whole response in one write). For
  `--translate` it also speaks the backend protocols agentwrap translates from,
  each streaming the same N text deltas (so the same number of Anthropic events
  comes out of the proxy), with N taken from the request's max tokens:
  OpenAI Chat (`POST .../chat/completions`), OpenAI Responses
  (`POST .../responses`, typed `event:` lines with sequence numbers) and Gemini
  (`POST .../models/M:streamGenerateContent?alt=sse`, `data:` chunks with CRLF
  line ends and usageMetadata on every chunk, like the real API; `:generateContent`
  for the non-streaming JSON). The bulk marker of a translated request is a stop
  sequence "BULK" (Chat, Gemini) or temperature 0.5 (Responses), see
  `stream_payload`;
* the proxy under test: `agentwrap claude --profile <tmp profile> -- ...` with a
  stand-in `claude` on PATH that records ANTHROPIC_BASE_URL, ANTHROPIC_AUTH_TOKEN
  and its own start time, then sleeps until killed. The profile's backend is the
  fake upstream as `anthropic_messages` (pass-through), or with `--translate X`
  as `openai_chat`, `openai_responses` or `gemini`: the agent side stays
  Anthropic Messages, so every request and event is translated;
* the measuring client: this process, hand-written HTTP/1.1 on asyncio
  protocols (no httpx), identical for both targets; then, for latency and one
  stream figure, the official `anthropic` async client (httpx) as a second
  client, so no figure rests on one client's costs.

`--pin 0` runs every process of the benchmark on CPU 0 (affinity is inherited):
the ratios then compare the CPU cost of the two paths, instead of depending on
how the scheduler places three processes on this machine's cores (the direct
baseline otherwise swings between ~200k and ~800k events/s from run to run).

Every figure is measured against the upstream directly ("direct", always its
Anthropic Messages endpoint) and through agentwrap ("proxy") in the same run.
All traffic stays on 127.0.0.1. Every process the benchmark starts is stopped
at the end, also on Ctrl-C or failure.
This is a benchmark that prints numbers; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MODEL = "claude-bench-1"

TARGETS = {
    "added_p50_ms": 0.5,
    "added_p99_ms": 2.0,
    "stream_ratio": 0.9,
    "translated_stream_ratio": 0.5,  # a translated stream re-encodes every event
    "start_to_exec_ms": 150.0,
    "idle_rss_mb": 40.0,
}


# =============================================================================
# Fake upstream (runs in its own process)
# =============================================================================

_SMALL_JSON = json.dumps(
    {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "Hello from the bench upstream."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 7},
    },
    separators=(",", ":"),
).encode()


def _sse(event: str, data: dict) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def stream_events(n: int) -> list[bytes]:
    """The SSE events of one streamed message with `n` text deltas (each one HTTP chunk)."""
    start = {
        "type": "message_start",
        "message": {"id": "msg_bench", "type": "message", "role": "assistant", "model": MODEL, "content": [],
                    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 1}},
    }
    events = [
        _sse("message_start", start),
        _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
    ]
    for i in range(n):
        events.append(_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                   "delta": {"type": "text_delta", "text": f"tok{i % 1000:03d} "}}))
    events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(_sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                         "stop_sequence": None}, "usage": {"output_tokens": n}}))
    events.append(_sse("message_stop", {"type": "message_stop"}))
    return events


EXTRA_EVENTS = 5  # message_start, content_block_start, content_block_stop, message_delta, message_stop


def _text(i: int) -> str:
    """The text of the i-th delta, the same in every protocol."""
    return f"tok{i % 1000:03d} "


def chat_stream_events(n: int) -> list[bytes]:
    """The same answer as OpenAI Chat Completions chunks (for --translate chat: agentwrap turns
    them into the Anthropic events above)."""
    def chunk(delta: dict, finish: str | None = None, **extra) -> bytes:
        doc = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return b"data: " + json.dumps(doc, separators=(",", ":")).encode() + b"\n\n"

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": _text(i)}) for i in range(n)]
    events.append(chunk({}, "stop"))
    events.append(b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":0,"model":"' + MODEL.encode()
                  + b'","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":%d,"total_tokens":%d}}\n\n' % (n, n + 12))
    events.append(b"data: [DONE]\n\n")
    return events


_RESP_ID, _RESP_ITEM = "resp_bench", "msg_bench"


def _responses_object(status: str, output: list, usage: dict | None) -> dict:
    return {"id": _RESP_ID, "object": "response", "created_at": 0, "status": status, "error": None,
            "incomplete_details": None, "model": MODEL, "output": output, "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": [], "usage": usage}


def _responses_usage(out_tokens: int) -> dict:
    return {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": out_tokens,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 12 + out_tokens}


def _responses_message(text: str | None) -> dict:
    """The assistant message item: in progress (text None, no content yet) or completed."""
    content = [] if text is None else [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {"id": _RESP_ITEM, "type": "message", "status": "in_progress" if text is None else "completed",
            "role": "assistant", "content": content}


def responses_stream_events(n: int) -> list[bytes]:
    """The same answer as OpenAI Responses events (for --translate responses): typed `event:`
    lines, each event with its sequence_number, one message item with `n` output_text deltas."""
    events: list[bytes] = []

    def ev(payload: dict) -> None:
        kind = payload["type"]
        payload = {"type": kind, "sequence_number": len(events), **{k: v for k, v in payload.items() if k != "type"}}
        events.append(_sse(kind, payload))

    text = "".join(_text(i) for i in range(n))
    where = {"item_id": _RESP_ITEM, "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "annotations": [], "logprobs": []}
    ev({"type": "response.created", "response": _responses_object("in_progress", [], None)})
    ev({"type": "response.in_progress", "response": _responses_object("in_progress", [], None)})
    ev({"type": "response.output_item.added", "output_index": 0, "item": _responses_message(None)})
    ev({"type": "response.content_part.added", **where, "part": {**part, "text": ""}})
    for i in range(n):
        ev({"type": "response.output_text.delta", **where, "delta": _text(i), "logprobs": []})
    ev({"type": "response.output_text.done", **where, "text": text, "logprobs": []})
    ev({"type": "response.content_part.done", **where, "part": {**part, "text": text}})
    ev({"type": "response.output_item.done", "output_index": 0, "item": _responses_message(text)})
    ev({"type": "response.completed",
        "response": _responses_object("completed", [_responses_message(text)], _responses_usage(n))})
    return events


GEMINI_MODEL_VERSION = "gemini-bench-1"


def _gemini_dumps(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ": ")).encode()  # the real API: a space after each colon


def _gemini_doc(text: str, usage: dict, finish: str | None = None) -> dict:
    candidate: dict = {"content": {"parts": [{"text": text}], "role": "model"}}
    if finish:
        candidate["finishReason"] = finish
    candidate["index"] = 0
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": GEMINI_MODEL_VERSION,
            "responseId": "bench-gemini-1"}


def gemini_stream_events(n: int) -> list[bytes]:
    """The same answer as Gemini `alt=sse` chunks (for --translate gemini), as the real API sends
    them: `data:` lines ending in CRLF, usageMetadata on every chunk, finishReason STOP on the
    last chunk (which carries the last text)."""
    events = []
    prompt = {"promptTokenCount": 12, "totalTokenCount": 12,
              "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}]}
    for i in range(max(n, 1)):
        last = i >= n - 1
        if last:
            usage = {"promptTokenCount": 12, "candidatesTokenCount": n, "totalTokenCount": 12 + n,
                     "promptTokensDetails": prompt["promptTokensDetails"]}
        else:
            usage = prompt
        doc = _gemini_doc(_text(i) if n else "", usage, "STOP" if last else None)
        events.append(b"data: " + _gemini_dumps(doc) + b"\r\n\r\n")
    return events


_CHAT_JSON = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the bench."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
}).encode()
_RESPONSES_JSON = json.dumps(
    _responses_object("completed", [_responses_message("Hello from the bench.")], _responses_usage(5)),
    separators=(",", ":"),
).encode()
_GEMINI_JSON = _gemini_dumps(_gemini_doc(
    "Hello from the bench.", {"promptTokenCount": 12, "candidatesTokenCount": 5, "totalTokenCount": 17}, "STOP"))

_JSON_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nrequest-id: req_bench\r\n"
              b"content-length: %d\r\n\r\n" % len(_SMALL_JSON))
_SSE_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"
             b"request-id: req_bench\r\ntransfer-encoding: chunked\r\n\r\n")
_LAST_CHUNK = b"0\r\n\r\n"

# The SSE events of each streamed protocol, by the name the upstream uses for it.
STREAMS = {"anthropic": stream_events, "chat": chat_stream_events, "responses": responses_stream_events,
           "gemini": gemini_stream_events}
BULK_STOP = "BULK"  # a stop sequence: the bulk marker of a translated Chat or Gemini request
BULK_TEMPERATURE = 0.5  # the bulk marker of a translated Responses request (it has no stop sequences)


class _UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection of the fake upstream. Requests are handled in order."""

    cache: dict[tuple[str, int], tuple[list[bytes], bytes]] = {}

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(buf) < end + 4 + length:
                return
            body = bytes(buf[end + 4 : end + 4 + length])
            del buf[: end + 4 + length]
            self.respond(head[0], body)

    def respond(self, request_line: str, body: bytes) -> None:
        t = self.transport
        assert t is not None
        parts = request_line.split(" ")
        method, target = parts[0], parts[1] if len(parts) > 1 else "/"
        path, _, query = target.partition("?")
        if method == "POST" and path.endswith("/chat/completions"):
            self.respond_chat(body)
            return
        if method == "POST" and path.endswith("/responses"):
            self.respond_responses(body)
            return
        if method == "POST" and "/models/" in path and path.endswith((":streamGenerateContent", ":generateContent")):
            self.respond_gemini(path.endswith(":streamGenerateContent"), body)
            return
        if method != "POST" or not path.endswith("/v1/messages"):
            msg = b'{"type":"error","error":{"type":"not_found_error","message":"bench upstream: unknown path"}}'
            t.write(b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                    % (len(msg), msg))
            return
        stream, n, bulk = False, 10, False
        if b'"stream"' in body:
            req = json.loads(body)
            stream = bool(req.get("stream"))
            n = int(req.get("events", n))
            bulk = req.get("write") == "bulk"
        for kv in query.split("&"):
            k, _, v = kv.partition("=")
            if k == "events" and v.isdigit():
                n = int(v)
        if not stream:
            t.write(_JSON_HEAD + _SMALL_JSON)
            return
        self.send_stream("anthropic", n, bulk)

    def send_stream(self, protocol: str, n: int, bulk: bool) -> None:
        """Stream `n` text deltas in `protocol`: one HTTP chunk per event, and one write per event
        back to back, no sleeps (bulk: the whole response in one write)."""
        t = self.transport
        assert t is not None
        cached = self.cache.get((protocol, n))
        if cached is None:
            chunks = [_chunk(e) for e in STREAMS[protocol](n)]
            cached = self.cache[(protocol, n)] = (chunks, _SSE_HEAD + b"".join(chunks) + _LAST_CHUNK)
        chunks, whole = cached
        if bulk:
            t.write(whole)
            return
        write = t.write
        write(_SSE_HEAD)
        for c in chunks:
            write(c)
        write(_LAST_CHUNK)

    def send_json(self, body: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                             % (len(body), body))

    def respond_chat(self, body: bytes) -> None:
        req = json.loads(body)
        if not req.get("stream"):
            self.send_json(_CHAT_JSON)
            return
        n = int(req.get("max_tokens") or req.get("max_completion_tokens") or 10)
        stop = req.get("stop")
        self.send_stream("chat", n, BULK_STOP in ([stop] if isinstance(stop, str) else stop or []))

    def respond_responses(self, body: bytes) -> None:
        req = json.loads(body)
        if not req.get("stream"):
            self.send_json(_RESPONSES_JSON)
            return
        n = int(req.get("max_output_tokens") or 10)
        self.send_stream("responses", n, req.get("temperature") == BULK_TEMPERATURE)

    def respond_gemini(self, stream: bool, body: bytes) -> None:
        if not stream:  # Gemini has no "stream" field: the method says it
            self.send_json(_GEMINI_JSON)
            return
        config = json.loads(body).get("generationConfig") or {}
        n = int(config.get("maxOutputTokens") or 10)
        self.send_stream("gemini", n, BULK_STOP in (config.get("stopSequences") or []))


def upstream_main() -> None:
    """Entry point of the upstream process: prints its port, serves until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us (stdin EOF or SIGTERM)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_UpstreamProtocol, HOST, 0, backlog=1024)
        port = server.sockets[0].getsockname()[1]
        sys.stdout.write(f"{port}\n")
        sys.stdout.flush()
        done = loop.create_future()

        def on_stdin() -> None:
            if not os.read(0, 4096) and not done.done():
                done.set_result(None)

        loop.add_reader(0, on_stdin)
        loop.add_signal_handler(signal.SIGTERM, lambda: done.done() or done.set_result(None))
        await done
        server.close()

    asyncio.run(run())


# =============================================================================
# Measuring client: minimal HTTP/1.1 over asyncio protocols
# =============================================================================

_HEAD, _BODY_CL, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILER = range(6)


@dataclass(slots=True)
class Result:
    status: int = 0
    t_sent: int = 0  # perf_counter_ns
    t_first: int = 0  # first body byte
    t_done: int = 0
    body_bytes: int = 0
    events: int = 0  # "\n\n" separators seen in the de-chunked body
    reads: int = 0  # data_received calls (socket reads) for this response
    chunks: int = 0  # HTTP chunks of its body
    body: bytearray | None = None

    @property
    def total_ns(self) -> int:
        return self.t_done - self.t_sent

    @property
    def first_ns(self) -> int:
        return self.t_first - self.t_sent


class ClientConn(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.state = _HEAD
        self.left = 0
        self.last = 0  # last body byte seen (to count "\n\n" across chunk boundaries)
        self.res: Result | None = None
        self.waiter: asyncio.Future | None = None
        self.lost: BaseException | None = None

    @classmethod
    async def open(cls, port: int) -> ClientConn:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(cls, HOST, port)
        return proto

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc) -> None:
        self.lost = exc or ConnectionResetError("connection closed")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(self.lost)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def request(self, raw: bytes, keep_body: bool = False) -> asyncio.Future:
        """Send a pre-built request; the future resolves to a Result when the body has ended."""
        if self.lost is not None:
            raise self.lost
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self.res = Result(body=bytearray() if keep_body else None)
        self.state, self.last = _HEAD, 0
        self.res.t_sent = time.perf_counter_ns()
        self.transport.write(raw)  # type: ignore[union-attr]
        return self.waiter

    def _finish(self, now: int) -> None:
        res = self.res
        assert res is not None and self.waiter is not None
        if not res.t_first:
            res.t_first = now
        res.t_done = now
        self.res = None
        if not self.waiter.done():
            self.waiter.set_result(res)

    def _body(self, buf: bytearray, pos: int, n: int, now: int) -> None:
        res = self.res
        if not res.t_first:
            res.t_first = now
        res.body_bytes += n
        res.events += buf.count(b"\n\n", pos, pos + n) + (self.last == 10 and buf[pos] == 10)
        self.last = buf[pos + n - 1]
        if res.body is not None:
            res.body += buf[pos : pos + n]

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        if self.res is not None:
            self.res.reads += 1
        buf = self.buf
        buf += data
        pos = 0
        end = len(buf)
        while pos < end and self.res is not None:
            st = self.state
            if st == _CHUNK_SIZE:
                i = buf.find(b"\r\n", pos)
                if i < 0:
                    break
                size = int(bytes(buf[pos:i]).split(b";", 1)[0], 16)
                pos = i + 2
                self.res.chunks += 1
                if size:
                    self.left, self.state = size, _CHUNK_DATA
                else:
                    self.state = _TRAILER
            elif st == _CHUNK_DATA:
                n = min(end - pos, self.left)
                self._body(buf, pos, n, now)
                pos += n
                self.left -= n
                if not self.left:
                    self.state = _CHUNK_CRLF
            elif st == _CHUNK_CRLF:
                if end - pos < 2:
                    break
                pos += 2
                self.state = _CHUNK_SIZE
            elif st == _HEAD:
                i = buf.find(b"\r\n\r\n", pos)
                if i < 0:
                    break
                lines = bytes(buf[pos:i]).split(b"\r\n")
                pos = i + 4
                self.res.status = int(lines[0].split(b" ", 2)[1])
                length, chunked = 0, False
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"transfer-encoding" and b"chunked" in value.lower():
                        chunked = True
                if chunked:
                    self.state = _CHUNK_SIZE
                elif length:
                    self.left, self.state = length, _BODY_CL
                else:
                    self._finish(now)
            elif st == _BODY_CL:
                n = min(end - pos, self.left)
                self._body(buf, pos, n, now)
                pos += n
                self.left -= n
                if not self.left:
                    self._finish(now)
            elif st == _TRAILER:
                i = buf.find(b"\r\n", pos)
                if i < 0:
                    break
                empty = i == pos
                pos = i + 2
                if empty:
                    self._finish(now)
        del buf[:pos]


def build_request(port: int, path: str, token: str, payload: dict) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"host: {HOST}:{port}\r\n"
        "content-type: application/json\r\n"
        "accept: application/json\r\n"
        "anthropic-version: 2023-06-01\r\n"
        f"authorization: Bearer {token}\r\n"
        "user-agent: agentwrap-bench/1\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


@dataclass(slots=True)
class Target:
    name: str
    port: int
    prefix: str  # path before /v1/messages
    token: str

    def req(self, payload: dict, query: str = "") -> bytes:
        path = f"{self.prefix}/v1/messages" + (f"?{query}" if query else "")
        return build_request(self.port, path, self.token, payload)


def small_payload() -> dict:
    return {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "Say hello."}]}


# --tools: the requests declare Claude Code-like tools, so tool-call repair is on for every answer
# (it watches the text for calls written into it; the fake upstream's answers hold none).
TOOLS = [
    {"name": "Bash", "description": "Run a shell command.", "input_schema": {
        "type": "object", "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}}, "required": ["command"]}},
    {"name": "Write", "description": "Write a file.", "input_schema": {
        "type": "object", "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["file_path", "content"]}},
]
WITH_TOOLS = False


def stream_payload(n: int, bulk: bool = False) -> dict:
    p = {**small_payload(), "stream": True, "events": n, "max_tokens": n}  # max_tokens: n for --translate
    if WITH_TOOLS:
        p["tools"] = TOOLS
    if bulk:
        # The Anthropic upstream reads "write"; it does not survive translation, so a translated
        # request carries the marker in fields agentwrap maps into every backend protocol: the
        # stop sequence BULK_STOP (Chat `stop`, Gemini `generationConfig.stopSequences`) and, as
        # the Responses API has no stop sequences, temperature BULK_TEMPERATURE. The fake
        # upstream only streams, so neither changes what it sends.
        p["write"] = "bulk"
        p["stop_sequences"] = [BULK_STOP]
        p["temperature"] = BULK_TEMPERATURE
    return p


# =============================================================================
# Statistics and process helpers
# =============================================================================


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


class Procs:
    """Every process the benchmark started; `stop_all()` ends them by pid (and their own session)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def add(self, p: subprocess.Popen) -> subprocess.Popen:
        self.procs.append(p)
        return p

    def stop(self, p: subprocess.Popen, timeout: float = 5.0) -> None:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Each child runs in its own session whose id is its pid: kill what is left of it.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if p.poll() is None:
            p.wait(2)
        for f in (p.stdin, p.stdout, p.stderr):
            if f is not None:
                f.close()

    def stop_all(self) -> None:
        while self.procs:
            self.stop(self.procs.pop())


# The stand-in's interpreter is named by absolute path: `env python3` may hit a
# pyenv shim (a shell script) that adds ~70 ms of its own.
STANDIN = """#!{python} -S
import time
T = time.time_ns()
import os, sys
stamp = os.environ.get("BENCH_STAMP")
if stamp:
    line = "%d\\n%d\\n%s\\n%s\\n" % (T, os.getpid(), os.environ.get("ANTHROPIC_BASE_URL", ""),
                                     os.environ.get("ANTHROPIC_AUTH_TOKEN", ""))
    fd = os.open(stamp + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, line.encode())
    os.close(fd)
    os.rename(stamp + ".tmp", stamp)
if sys.argv[1:] == ["x"]:
    sys.exit(0)
parent = int(os.environ.get("BENCH_PID", "0"))
while True:  # until killed; also leave if the benchmark itself is gone
    time.sleep(0.5)
    if parent:
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            sys.exit(0)
"""


def read_stamp(path: Path, timeout: float, proc: subprocess.Popen | None = None) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return path.read_text().split("\n")
        except FileNotFoundError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before the agent started")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no stamp at {path} after {timeout} s")
        time.sleep(0.0005)


# --translate CHOICE: the profile backend's protocol and the path after http://HOST:PORT in its
# base_url (OpenAI protocols include the version, Gemini's request paths carry /v1beta themselves).
BACKENDS = {
    "chat": ("openai_chat", "/v1"),
    "responses": ("openai_responses", "/v1"),
    "gemini": ("gemini", ""),
}


class Env:
    """Temporary bin dir with the stand-in, profile, environment."""

    def __init__(self, upstream_port: int, agentwrap_cmd: list[str], translate: str | None = None, guards: bool = True,
                 keyless: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="agentwrap-bench-"))
        self.bin = self.dir / "bin"
        self.bin.mkdir()
        self.standin = self.bin / "claude"
        self.standin.write_text(STANDIN.replace("{python}", os.path.realpath(sys.executable)))
        self.standin.chmod(0o755)
        self.profile = self.dir / "bench.toml"
        # --translate X: the backend speaks another protocol, so every request and event is translated.
        protocol, path = BACKENDS[translate] if translate else ("anthropic_messages", "")
        base = f"http://{HOST}:{upstream_port}{path}"
        self.backend_protocol = protocol
        self.profile.write_text(
            f'[backends.up]\nprotocol = "{protocol}"\nbase_url = "{base}"\n'
            + ("" if keyless else 'api_key_env = "UP_KEY"\n') + '\n[[routes]]\nbackend = "up"\n'
            + ("" if guards else "\n[guards.loop]\nenabled = false\n[guards.tool_loop]\nenabled = false\n"
                                 "[guards.tool_repair]\nenabled = false\n")
        )
        self.cmd = agentwrap_cmd
        self.flags: list[str] = []  # agentwrap options placed after the agent name
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ANTHROPIC_", "AGENTWRAP_", "CLAUDE_")) and k.lower() not in
               ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
        # Bytecode as an installed agentwrap has it: without .pyc files every start compiles
        # the modules it imports (~40 ms more start-to-exec here) and the first requests pay
        # for the lazy imports' compiling.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        env["UP_KEY"] = "bench-upstream-key"
        env["BENCH_PID"] = str(os.getpid())
        # Captures go to the benchmark's temp dir (and are measured: capture is on by default).
        env["AGENTWRAP_CAPTURE_DIR"] = str(self.dir / "captures")
        self.env = env
        self.n = 0

    def stamp_path(self) -> Path:
        self.n += 1
        return self.dir / f"stamp-{self.n}"

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def default_agentwrap_cmd() -> list[str]:
    script = Path(sys.executable).parent / "agentwrap"
    if script.exists():
        return [str(script)]
    found = shutil.which("agentwrap")
    if found:
        return [found]
    return [sys.executable, "-m", "agentwrap"]


def start_upstream(procs: Procs) -> tuple[subprocess.Popen, int]:
    p = procs.add(subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--_upstream"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
    ))
    line = p.stdout.readline()  # type: ignore[union-attr]
    if not line:
        raise RuntimeError("the fake upstream did not start")
    return p, int(line)


def cpu_s(proc) -> float:
    t = proc.cpu_times()
    return t.user + t.system


# =============================================================================
# Measurements
# =============================================================================


@dataclass
class Config:
    lat_n: int = 2000
    lat_warm: int = 200
    lat_rounds: int = 4  # direct and proxy alternate in rounds
    ttfc_n: int = 200
    ttfc_events: int = 5
    rate_events: int = 10_000
    rate_runs: int = 5
    conc: tuple[int, ...] = (16, 64)
    conc_events: int = 1000
    conc_reps: int = 3
    launches: int = 15
    sdk_n: int = 600  # small requests through the official SDK, per target
    sdk_events: int = 10_000
    sdk_runs: int = 3

    @classmethod
    def quick(cls) -> Config:
        return cls(lat_n=300, lat_warm=50, lat_rounds=2, ttfc_n=40, rate_runs=2, conc_events=300, conc_reps=1,
                   launches=3, sdk_n=100, sdk_events=2000, sdk_runs=1)


@dataclass
class Report:
    meta: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)


def us(ns: float) -> float:
    return ns / 1e3


def ms(ns: float) -> float:
    return ns / 1e6


def stream_text(body: bytes) -> str:
    """The text of the text_delta events of an Anthropic SSE body."""
    out = []
    for block in body.split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                data = json.loads(line[5:])
                delta = data.get("delta") if data.get("type") == "content_block_delta" else None
                if isinstance(delta, dict) and delta.get("type") == "text_delta":
                    out.append(delta["text"])
    return "".join(out)


async def check_target(t: Target, translated: bool = False) -> None:
    """One non-streaming and one streaming request (each also with the bulk marker), validated,
    before anything is timed. A translated stream carries the same events, re-encoded: its bytes
    are not compared, its event count and text are."""
    c = await ClientConn.open(t.port)
    try:
        r = await asyncio.wait_for(c.request(t.req(small_payload()), keep_body=True), 10)
        if r.status != 200 or json.loads(bytes(r.body)).get("type") != "message":
            raise RuntimeError(f"{t.name}: unexpected response {r.status}: {bytes(r.body)[:300]!r}")
        want = b"".join(stream_events(50))
        for bulk in (False, True):
            r = await asyncio.wait_for(c.request(t.req(stream_payload(50, bulk)), keep_body=True), 10)
            body = bytes(r.body)
            same = (stream_text(body) == stream_text(want)) if translated else body == want
            if r.status != 200 or not same or r.events != 50 + EXTRA_EVENTS:
                raise RuntimeError(f"{t.name}: stream mismatch{' (bulk)' if bulk else ''}: status {r.status}, "
                                   f"{r.events} events, {len(body)} bytes (want {len(want)}): {body[:300]!r}")
    finally:
        c.close()


async def seq_latency(t: Target, raw: bytes, n: int, warm: int, conn: ClientConn | None = None) -> list[int]:
    c = conn or await ClientConn.open(t.port)
    try:
        for _ in range(warm):
            await c.request(raw)
        out = []
        for _ in range(n):
            r = await c.request(raw)
            if r.status != 200:
                raise RuntimeError(f"{t.name}: status {r.status}")
            out.append(r.total_ns)
        return out
    finally:
        if conn is None:
            c.close()


async def measure_latency(targets: list[Target], cfg: Config, proxy_ps, rep: Report) -> None:
    raw = {t.name: t.req(small_payload()) for t in targets}
    conns = {t.name: await ClientConn.open(t.port) for t in targets}
    samples: dict[str, list[int]] = {t.name: [] for t in targets}
    for t in targets:
        await seq_latency(t, raw[t.name], 0, cfg.lat_warm, conns[t.name])
    per_round = cfg.lat_n // cfg.lat_rounds
    proxy_cpu = 0.0
    for _ in range(cfg.lat_rounds):
        for t in targets:
            c0 = cpu_s(proxy_ps) if t.name == "proxy" else 0.0
            samples[t.name] += await seq_latency(t, raw[t.name], per_round, 0, conns[t.name])
            if t.name == "proxy":
                proxy_cpu += cpu_s(proxy_ps) - c0
    for c in conns.values():
        c.close()
    d, p = samples["direct"], samples["proxy"]
    fig = {
        "requests": len(d),
        "direct_p50_ms": ms(pct(d, 50)), "direct_p99_ms": ms(pct(d, 99)),
        "proxy_p50_ms": ms(pct(p, 50)), "proxy_p99_ms": ms(pct(p, 99)),
        "proxy_cpu_per_request_ms": proxy_cpu * 1e3 / len(p),
    }
    fig["added_p50_ms"] = fig["proxy_p50_ms"] - fig["direct_p50_ms"]
    fig["added_p99_ms"] = fig["proxy_p99_ms"] - fig["direct_p99_ms"]
    rep.figures["latency"] = fig


async def measure_ttfc(targets: list[Target], cfg: Config, rep: Report) -> None:
    fig: dict = {"requests": cfg.ttfc_n, "events_per_stream": cfg.ttfc_events}
    conns = {t.name: await ClientConn.open(t.port) for t in targets}
    first: dict[str, list[int]] = {t.name: [] for t in targets}
    total: dict[str, list[int]] = {t.name: [] for t in targets}
    raw = {t.name: t.req(stream_payload(cfg.ttfc_events)) for t in targets}
    for t in targets:
        for _ in range(max(10, cfg.ttfc_n // 10)):
            await conns[t.name].request(raw[t.name])
    for _ in range(cfg.ttfc_n):  # interleaved request by request
        for t in targets:
            r = await conns[t.name].request(raw[t.name])
            first[t.name].append(r.first_ns)
            total[t.name].append(r.total_ns)
    for c in conns.values():
        c.close()
    for name in first:
        fig[f"{name}_first_p50_ms"] = ms(pct(first[name], 50))
        fig[f"{name}_first_p99_ms"] = ms(pct(first[name], 99))
        fig[f"{name}_total_p50_ms"] = ms(pct(total[name], 50))
    fig["added_first_p50_ms"] = fig["proxy_first_p50_ms"] - fig["direct_first_p50_ms"]
    fig["added_first_p99_ms"] = fig["proxy_first_p99_ms"] - fig["direct_first_p99_ms"]
    rep.figures["ttfc"] = fig


async def measure_rate(targets: list[Target], cfg: Config, proxy_ps, rep: Report) -> None:
    n = cfg.rate_events
    for bulk in (False, True):
        key = "rate_bulk" if bulk else "rate"
        fig: dict = {"events": n, "runs": cfg.rate_runs,
                     "upstream_writes": "whole stream in one write" if bulk else "one write per event"}
        conns = {t.name: await ClientConn.open(t.port) for t in targets}
        raw = {t.name: t.req(stream_payload(n, bulk)) for t in targets}
        rates: dict[str, list[float]] = {t.name: [] for t in targets}
        reads: dict[str, list[int]] = {t.name: [] for t in targets}
        chunks: dict[str, list[int]] = {t.name: [] for t in targets}
        cpu = 0.0
        for t in targets:  # warm-up run
            await conns[t.name].request(raw[t.name])
        for _ in range(cfg.rate_runs):
            for t in targets:
                c0 = cpu_s(proxy_ps) if t.name == "proxy" else 0.0
                r = await conns[t.name].request(raw[t.name])
                if t.name == "proxy":
                    cpu += cpu_s(proxy_ps) - c0
                if r.events != n + EXTRA_EVENTS:
                    raise RuntimeError(f"{t.name}: {r.events} events, want {n + EXTRA_EVENTS}")
                rates[t.name].append(r.events / (r.total_ns / 1e9))
                reads[t.name].append(r.reads)
                chunks[t.name].append(r.chunks)
        for c in conns.values():
            c.close()
        for name, v in rates.items():
            fig[f"{name}_events_per_s"] = statistics.median(v)
            # how the client received them: socket reads and HTTP chunks per 1,000 events
            fig[f"{name}_reads_per_1k_events"] = statistics.median(reads[name]) * 1000 / (n + EXTRA_EVENTS)
            fig[f"{name}_chunks_per_1k_events"] = statistics.median(chunks[name]) * 1000 / (n + EXTRA_EVENTS)
        fig["ratio"] = fig["proxy_events_per_s"] / fig["direct_events_per_s"]
        fig["proxy_cpu_per_event_us"] = cpu * 1e6 / (cfg.rate_runs * (n + EXTRA_EVENTS))
        rep.figures[key] = fig


async def concurrent_streams(t: Target, k: int, n: int, conns: list[ClientConn]) -> tuple[float, list[int], int]:
    raw = t.req(stream_payload(n))
    t0 = time.perf_counter_ns()
    results = await asyncio.gather(*(c.request(raw) for c in conns))
    wall = time.perf_counter_ns() - t0
    events = sum(r.events for r in results)
    if any(r.status != 200 or r.events != n + EXTRA_EVENTS for r in results):
        raise RuntimeError(f"{t.name}: a concurrent stream was incomplete")
    # completion latency measured from the common start (the client sends all k requests at once)
    return wall / 1e9, [r.t_done - t0 for r in results], events


async def measure_concurrency(targets: list[Target], cfg: Config, proxy_ps, rep: Report) -> None:
    for k in cfg.conc:
        fig: dict = {"streams": k, "events_per_stream": cfg.conc_events, "reps": cfg.conc_reps}
        conns = {t.name: [await ClientConn.open(t.port) for _ in range(k)] for t in targets}
        walls: dict[str, list[float]] = {t.name: [] for t in targets}
        lats: dict[str, list[int]] = {t.name: [] for t in targets}
        evs: dict[str, list[float]] = {t.name: [] for t in targets}
        cpu = 0.0
        for t in targets:  # warm-up: every connection (and the proxy's upstream pool) in use once
            await concurrent_streams(t, k, 20, conns[t.name])
        for _ in range(cfg.conc_reps):
            for t in targets:
                c0 = cpu_s(proxy_ps) if t.name == "proxy" else 0.0
                wall, lat, events = await concurrent_streams(t, k, cfg.conc_events, conns[t.name])
                if t.name == "proxy":
                    cpu += cpu_s(proxy_ps) - c0
                walls[t.name].append(wall)
                lats[t.name] += lat
                evs[t.name].append(events / wall)
        for cs in conns.values():
            for c in cs:
                c.close()
        for name in walls:
            fig[f"{name}_wall_s"] = statistics.median(walls[name])
            fig[f"{name}_events_per_s"] = statistics.median(evs[name])
            fig[f"{name}_p50_ms"] = ms(pct(lats[name], 50))
            fig[f"{name}_p99_ms"] = ms(pct(lats[name], 99))
        fig["ratio"] = fig["proxy_events_per_s"] / fig["direct_events_per_s"]
        fig["added_p99_ms"] = fig["proxy_p99_ms"] - fig["direct_p99_ms"]
        fig["proxy_cpu_per_event_us"] = cpu * 1e6 / (cfg.conc_reps * k * (cfg.conc_events + EXTRA_EVENTS))
        rep.figures[f"conc{k}"] = fig


async def measure_sdk(targets: list[Target], cfg: Config, proxy_ps, rep: Report) -> None:
    """The same figures from the official `anthropic` async client (httpx): a second client,
    so the ratios do not rest on the hand-written one's costs alone. Targets alternate in
    rounds, as above; the SDK parses every SSE event into objects, as an agent's client does."""
    import anthropic

    clients = {t.name: anthropic.AsyncAnthropic(base_url=f"http://{HOST}:{t.port}{t.prefix}", auth_token=t.token,
                                                 max_retries=0, timeout=60)
               for t in targets}
    small = small_payload()
    lat: dict[str, list[int]] = {t.name: [] for t in targets}
    rates: dict[str, list[float]] = {t.name: [] for t in targets}
    cpu_req = cpu_ev = 0.0
    try:
        for t in targets:  # warm-up: connections, imports, the first parse
            for _ in range(20):
                await clients[t.name].messages.create(**small)
        rounds = 4
        for _ in range(rounds):
            for t in targets:
                c0 = cpu_s(proxy_ps) if t.name == "proxy" else 0.0
                for _ in range(cfg.sdk_n // rounds):
                    t0 = time.perf_counter_ns()
                    await clients[t.name].messages.create(**small)
                    lat[t.name].append(time.perf_counter_ns() - t0)
                if t.name == "proxy":
                    cpu_req += cpu_s(proxy_ps) - c0
        payload = stream_payload(cfg.sdk_events)
        del payload["stream"]
        extra = {"events": payload.pop("events")}  # the fake upstream's own field
        for _ in range(cfg.sdk_runs):
            for t in targets:
                c0 = cpu_s(proxy_ps) if t.name == "proxy" else 0.0
                t0 = time.perf_counter_ns()
                events = 0
                async with await clients[t.name].messages.create(**payload, stream=True, extra_body=extra) as stream:
                    async for _event in stream:
                        events += 1
                elapsed = time.perf_counter_ns() - t0
                if t.name == "proxy":
                    cpu_ev += cpu_s(proxy_ps) - c0
                if events != cfg.sdk_events + EXTRA_EVENTS:
                    raise RuntimeError(f"{t.name} (SDK): {events} events, want {cfg.sdk_events + EXTRA_EVENTS}")
                rates[t.name].append(events / (elapsed / 1e9))
    finally:
        for c in clients.values():
            await c.close()
    d, p = lat["direct"], lat["proxy"]
    fig = {"requests": len(d), "direct_p50_ms": ms(pct(d, 50)), "direct_p99_ms": ms(pct(d, 99)),
           "proxy_p50_ms": ms(pct(p, 50)), "proxy_p99_ms": ms(pct(p, 99)),
           "proxy_cpu_per_request_ms": cpu_req * 1e3 / len(p), "events": cfg.sdk_events, "runs": cfg.sdk_runs,
           "direct_events_per_s": statistics.median(rates["direct"]), "proxy_events_per_s": statistics.median(rates["proxy"]),
           "proxy_cpu_per_event_us": cpu_ev * 1e6 / (cfg.sdk_runs * (cfg.sdk_events + EXTRA_EVENTS))}
    fig["added_p50_ms"] = fig["proxy_p50_ms"] - fig["direct_p50_ms"]
    fig["added_p99_ms"] = fig["proxy_p99_ms"] - fig["direct_p99_ms"]
    fig["ratio"] = fig["proxy_events_per_s"] / fig["direct_events_per_s"]
    rep.figures["sdk"] = fig


def measure_launch(env: Env, procs: Procs, cfg: Config, rep: Report) -> None:
    """Start -> exec of the stand-in: bare, through agentwrap with the profile, and with no profile."""
    kinds = {
        "standin_alone": lambda: [str(env.standin), "x"],
        "with_profile": lambda: [*env.cmd, "claude", *env.flags, "--profile", str(env.profile), "--", "x"],
        "no_profile": lambda: [*env.cmd, "claude", *env.flags, "--", "x"],
    }
    to_exec: dict[str, list[float]] = {k: [] for k in kinds}
    to_exit: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(cfg.launches):
        for kind, argv in kinds.items():
            stamp = env.stamp_path()
            e = {**env.env, "BENCH_STAMP": str(stamp)}
            args = argv()
            t0 = time.time_ns()
            p = procs.add(subprocess.Popen(args, env=e, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.PIPE, start_new_session=True))
            try:
                lines = read_stamp(stamp, 10, None)
                rc = p.wait(15)
                t_exit = time.time_ns()
                if rc != 0:
                    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
                    raise RuntimeError(f"{' '.join(args)} exited {rc}: {err.strip()}")
            finally:
                procs.procs.remove(p)
                procs.stop(p)
            to_exec[kind].append((int(lines[0]) - t0) / 1e6)
            to_exit[kind].append((t_exit - t0) / 1e6)
    fig: dict = {"launches": cfg.launches}
    for kind in kinds:
        fig[f"{kind}_exec_median_ms"] = statistics.median(to_exec[kind])
        fig[f"{kind}_exec_min_ms"] = min(to_exec[kind])
        fig[f"{kind}_exit_median_ms"] = statistics.median(to_exit[kind])
    rep.figures["launch"] = fig


def start_agentwrap(env: Env, procs: Procs) -> tuple[subprocess.Popen, str, str, Path]:
    stamp = env.stamp_path()
    errlog = env.dir / "agentwrap.stderr"
    with open(errlog, "wb") as err:
        p = procs.add(subprocess.Popen(
            [*env.cmd, "claude", *env.flags, "--profile", str(env.profile), "--", "--bench-sleep"],
            env={**env.env, "BENCH_STAMP": str(stamp)}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=err, start_new_session=True,
        ))
    try:
        lines = read_stamp(stamp, 20, p)
    except Exception as exc:
        raise RuntimeError(f"{exc}\nagentwrap stderr:\n{errlog.read_text(errors='replace')}") from exc
    return p, lines[2], lines[3], errlog


def proxy_target(base_url: str, token: str) -> Target:
    rest = base_url.split("://", 1)[1]
    hostport, _, prefix = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    if host != HOST:
        raise RuntimeError(f"agentwrap listens on {host}, not {HOST}")
    return Target("proxy", int(port), "/" + prefix.rstrip("/") if prefix else "", token)


# =============================================================================
# Output
# =============================================================================


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def render(rep: Report) -> str:
    f = rep.figures
    out = []
    m = rep.meta
    want = stream_target(m)
    out.append(f"agentwrap proxy benchmark ({m['mode']}) - {m['python']} - {m['cpus']} CPUs - "
               f"{m['duration_s']:.0f} s")
    out.append(f"agentwrap: {' '.join(m['agentwrap_cmd'])}   upstream: fake, own process, {HOST}")
    if m.get("translate"):
        out.append(f"translate: {m['translate']} - agent anthropic_messages -> proxy -> backend "
                   f"{m.get('backend_protocol')} (direct: anthropic_messages)")
    else:
        out.append("translate: none - backend anthropic_messages (pass-through)")
    if m.get("pin"):
        out.append(f"pinned: every process on CPU {m['pin']}")
    if "guards" in m:
        out.append(f"guards: {m['guards']} - key held: {'yes' if m['key_held'] else 'no'} - requests declare tools: "
                   f"{'yes' if m['tools'] else 'no'}")
    out.append("")
    row = "{:<44} {:>12} {:>12} {:>14}  {}"
    out.append(row.format("figure", "direct", "proxy", "diff / ratio", "target"))
    out.append("-" * 104)

    if "latency" in f:
        L = f["latency"]
        out.append(row.format(f"non-streaming latency p50 (ms, n={L['requests']})", f"{L['direct_p50_ms']:.3f}",
                              f"{L['proxy_p50_ms']:.3f}", f"{L['added_p50_ms']:+.3f}",
                              f"<= 0.5 added  {verdict(L['added_p50_ms'] <= TARGETS['added_p50_ms'])}"))
        out.append(row.format("non-streaming latency p99 (ms)", f"{L['direct_p99_ms']:.3f}",
                              f"{L['proxy_p99_ms']:.3f}", f"{L['added_p99_ms']:+.3f}",
                              f"<= 2 added    {verdict(L['added_p99_ms'] <= TARGETS['added_p99_ms'])}"))
        out.append(row.format("  proxy CPU per request (ms)", "", f"{L['proxy_cpu_per_request_ms']:.3f}", "", ""))
    if "ttfc" in f:
        T = f["ttfc"]
        out.append(row.format(f"stream time to first chunk p50 (ms, n={T['requests']})",
                              f"{T['direct_first_p50_ms']:.3f}", f"{T['proxy_first_p50_ms']:.3f}",
                              f"{T['added_first_p50_ms']:+.3f}", ""))
        out.append(row.format("stream time to first chunk p99 (ms)", f"{T['direct_first_p99_ms']:.3f}",
                              f"{T['proxy_first_p99_ms']:.3f}", f"{T['added_first_p99_ms']:+.3f}", ""))
    for key, label in (("rate", "per-event writes"), ("rate_bulk", "one bulk write")):
        if key in f:
            R = f[key]
            out.append(row.format(f"events/s, {R['events']} ev stream ({label})", f"{R['direct_events_per_s']:,.0f}",
                                  f"{R['proxy_events_per_s']:,.0f}", f"x{R['ratio']:.2f}",
                                  f">= {want:.1f}x       {verdict(R['ratio'] >= want)}"))
            out.append(row.format("  proxy CPU per event (us)", "", f"{R['proxy_cpu_per_event_us']:.2f}", "", ""))
            out.append(row.format("  client reads / HTTP chunks per 1k events",
                                  f"{R['direct_reads_per_1k_events']:.0f} / {R['direct_chunks_per_1k_events']:.0f}",
                                  f"{R['proxy_reads_per_1k_events']:.0f} / {R['proxy_chunks_per_1k_events']:.0f}", "", ""))
    for k in (16, 64):
        key = f"conc{k}"
        if key in f:
            C = f[key]
            out.append(row.format(f"{k} streams x {C['events_per_stream']} ev: wall (s)", f"{C['direct_wall_s']:.3f}",
                                  f"{C['proxy_wall_s']:.3f}", f"x{C['proxy_wall_s'] / C['direct_wall_s']:.2f}", ""))
            out.append(row.format("  aggregate events/s", f"{C['direct_events_per_s']:,.0f}",
                                  f"{C['proxy_events_per_s']:,.0f}", f"x{C['ratio']:.2f}",
                                  f">= {want:.1f}x       {verdict(C['ratio'] >= want)}"))
            out.append(row.format("  completion p50 (ms)", f"{C['direct_p50_ms']:.1f}", f"{C['proxy_p50_ms']:.1f}",
                                  f"{C['proxy_p50_ms'] - C['direct_p50_ms']:+.1f}", ""))
            out.append(row.format("  completion p99 (ms)", f"{C['direct_p99_ms']:.1f}", f"{C['proxy_p99_ms']:.1f}",
                                  f"{C['added_p99_ms']:+.1f}", ""))
            out.append(row.format("  proxy CPU per event (us)", "", f"{C['proxy_cpu_per_event_us']:.2f}", "", ""))
    if "sdk" in f:
        K = f["sdk"]
        out.append(row.format(f"SDK client: latency p50 (ms, n={K['requests']})", f"{K['direct_p50_ms']:.3f}",
                              f"{K['proxy_p50_ms']:.3f}", f"{K['added_p50_ms']:+.3f}", ""))
        out.append(row.format("SDK client: latency p99 (ms)", f"{K['direct_p99_ms']:.3f}", f"{K['proxy_p99_ms']:.3f}",
                              f"{K['added_p99_ms']:+.3f}", ""))
        out.append(row.format("  proxy CPU per request (ms)", "", f"{K['proxy_cpu_per_request_ms']:.3f}", "", ""))
        out.append(row.format(f"SDK client: events/s, {K['events']} ev stream", f"{K['direct_events_per_s']:,.0f}",
                              f"{K['proxy_events_per_s']:,.0f}", f"x{K['ratio']:.2f}", ""))
        out.append(row.format("  proxy CPU per event (us)", "", f"{K['proxy_cpu_per_event_us']:.2f}", "", ""))
    if "rss" in f:
        S = f["rss"]
        out.append(row.format("agentwrap RSS idle (MB)", "", f"{S['idle_mb']:.1f}", "",
                              f"<= 40         {verdict(S['idle_mb'] <= TARGETS['idle_rss_mb'])}"))
        out.append(row.format("agentwrap RSS after load (MB)", "", f"{S['after_load_mb']:.1f}",
                              f"{S['after_load_mb'] - S['idle_mb']:+.1f}", ""))
    if "launch" in f:
        X = f["launch"]
        n = X["launches"]
        out.append(row.format(f"start -> exec, stand-in alone (ms, median of {n})", "",
                              f"{X['standin_alone_exec_median_ms']:.1f}", "", "(baseline: python3 -S start-up)"))
        for kind, label in (("with_profile", "with --profile"), ("no_profile", "no profile (pass-through)")):
            v = X[f"{kind}_exec_median_ms"]
            out.append(row.format(f"start -> exec, {label} (ms)", "", f"{v:.1f}",
                                  f"net {v - X['standin_alone_exec_median_ms']:.1f}",
                                  f"<= 150        {verdict(v <= TARGETS['start_to_exec_ms'])}"))
            out.append(row.format(f"  start -> agentwrap exit, {label} (ms)", "",
                                  f"{X[f'{kind}_exit_median_ms']:.1f}", "", ""))
    out.append("")
    missed = rep.meta.get("missed", [])
    out.append("targets missed: " + (", ".join(missed) if missed else "none"))
    return "\n".join(out)


def stream_target(meta: dict) -> float:
    return TARGETS["translated_stream_ratio" if meta.get("translate") else "stream_ratio"]


def missed_targets(f: dict, meta: dict) -> list[str]:
    missed = []
    if "latency" in f:
        if f["latency"]["added_p50_ms"] > TARGETS["added_p50_ms"]:
            missed.append("added p50")
        if f["latency"]["added_p99_ms"] > TARGETS["added_p99_ms"]:
            missed.append("added p99")
    for key in ("rate", "rate_bulk", "conc16", "conc64"):
        if key in f and f[key]["ratio"] < stream_target(meta):
            missed.append(f"stream rate ({key})")
    if "rss" in f and f["rss"]["idle_mb"] > TARGETS["idle_rss_mb"]:
        missed.append("idle RSS")
    if "launch" in f:
        for kind in ("with_profile", "no_profile"):
            if f["launch"][f"{kind}_exec_median_ms"] > TARGETS["start_to_exec_ms"]:
                missed.append(f"start-to-exec ({kind})")
    return missed


# =============================================================================
# Main
# =============================================================================


def run(args: argparse.Namespace) -> Report:
    import psutil

    cfg = Config.quick() if args.quick else Config()
    rep = Report()
    t_start = time.monotonic()
    if args.pin:
        os.sched_setaffinity(0, {int(c) for c in args.pin.split(",")})  # inherited by every process started below
    rep.meta = {"pin": args.pin, "mode": "quick" if args.quick else "full", "python": sys.version.split()[0],
                "cpus": os.cpu_count(), "agentwrap_cmd": args.agentwrap, "config": cfg.__dict__ | {"conc": list(cfg.conc)},
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    procs = Procs()
    env: Env | None = None
    try:
        up, up_port = start_upstream(procs)
        env = Env(up_port, args.agentwrap, translate=args.translate, guards=not args.no_guards, keyless=args.keyless)
        rep.meta["translate"] = args.translate
        rep.meta["guards"] = "off" if args.no_guards else "on"
        rep.meta["key_held"] = not args.keyless
        rep.meta["tools"] = args.tools
        rep.meta["backend_protocol"] = env.backend_protocol
        env.flags = ["--no-capture"] if args.no_capture else []
        log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if not args.silent else (lambda *a: None)

        log("starting agentwrap ...")
        aw, base_url, token, errlog = start_agentwrap(env, procs)
        rep.meta["base_url_shape"] = "http://127.0.0.1:PORT/<secret>"
        if not token:
            raise RuntimeError("the stand-in got no ANTHROPIC_AUTH_TOKEN (profile has api_key_env)")
        aw_ps = psutil.Process(aw.pid)
        time.sleep(0.5)  # let start-up settle before the idle figure
        idle_rss = aw_ps.memory_info().rss
        targets = [Target("direct", up_port, "", "bench-direct-token"), proxy_target(base_url, token)]

        async def load() -> None:
            for t in targets:
                await check_target(t, translated=bool(args.translate) and t.name == "proxy")
            log("latency ...")
            await measure_latency(targets, cfg, aw_ps, rep)
            log("time to first chunk ...")
            await measure_ttfc(targets, cfg, rep)
            log("stream rate ...")
            await measure_rate(targets, cfg, aw_ps, rep)
            log("concurrent streams ...")
            await measure_concurrency(targets, cfg, aw_ps, rep)
            log("the official anthropic SDK as the client ...")
            await measure_sdk(targets, cfg, aw_ps, rep)

        asyncio.run(load())
        rep.figures["rss"] = {"idle_mb": idle_rss / 2**20, "after_load_mb": aw_ps.memory_info().rss / 2**20,
                              "threads_after_load": aw_ps.num_threads()}
        procs.procs.remove(aw)
        procs.stop(aw)
        rep.meta["agentwrap_exit"] = aw.returncode
        rep.meta["agentwrap_stderr"] = errlog.read_text(errors="replace").strip()[-2000:]

        log("launch times ...")
        measure_launch(env, procs, cfg, rep)
    finally:
        procs.stop_all()
        if env is not None:
            env.cleanup()
    rep.meta["duration_s"] = time.monotonic() - t_start
    rep.meta["missed"] = missed_targets(rep.figures, rep.meta)
    return rep


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_upstream"]:
        upstream_main()
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke check, ~15 s)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ap.add_argument("--agentwrap", nargs="+", default=default_agentwrap_cmd(),
                    help="command that runs agentwrap (default: the venv's agentwrap script)")
    ap.add_argument("--silent", action="store_true", help="no progress lines on stderr")
    ap.add_argument("--translate", nargs="?", const="chat", default=None, choices=list(BACKENDS),
                    help="the proxy's backend speaks this protocol (default chat: OpenAI Chat; responses: "
                         "OpenAI Responses; gemini: Gemini): measure translation (agent and direct stay Anthropic)")
    ap.add_argument("--pin", metavar="CPUS", help="run every process on these CPUs (comma-separated ids), e.g. 0")
    ap.add_argument("--no-capture", action="store_true", help="run agentwrap with --no-capture (capture overhead = the difference)")
    ap.add_argument("--no-guards", action="store_true",
                    help="switch the profile's guards off (guard overhead = the difference; the key guard stays while a key is held)")
    ap.add_argument("--tools", action="store_true",
                    help="streamed requests declare tools (tool-call repair then watches every answer)")
    ap.add_argument("--keyless", action="store_true",
                    help="the backend gets no key (so no key is held and, with --no-guards, streams take the raw relay)")
    args = ap.parse_args(argv)
    global WITH_TOOLS
    WITH_TOOLS = args.tools

    def on_term(signum, frame):  # noqa: ARG001 - turn SIGTERM/SIGHUP into a clean unwind
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    try:
        rep = run(args)
    except KeyboardInterrupt:
        print("interrupted; every process the benchmark started has been stopped", file=sys.stderr)
        return 130
    except SystemExit as exc:
        print(f"stopped by signal {exc.code - 128}; every process the benchmark started has been stopped",
              file=sys.stderr)
        raise
    print(render(rep))
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": rep.meta, "targets": TARGETS, "figures": rep.figures},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
