"""A loopback upstream that streams what a misbehaving model would: a repetition loop,
tool calls with broken arguments, tool calls written into the text, the same tool call
over and over. For the guards' end-to-end tests with the real agents.

Each model request (streamed or whole, any of the four protocols) is answered by a
`scenario(request) -> list of neutral events`, encoded with that protocol's own encoder
and written one event per chunk (with an optional delay), so a client that stops
reading early is seen: `responses` records for each answer how many chunks it had and
whether the client went away before the last one. Everything else (count_tokens,
Gemini CLI's routing call in JSON mode, model lists) is answered by agentwrap's
scripted backend with a plain text script. The shell command of a scenario's tool
call is mapped onto whatever shell tool the agent declared, as the scripted backend
does, then its arguments can be broken on purpose.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agentwrap.backends.scripted import Script, ScriptedBackend, _shell_call
from agentwrap.protocols import neutral as ev
from agentwrap.protocols.codec import codec
from agentwrap.protocols.endpoints import classify
from agentwrap.protocols.neutral.summary import RequestSummary
from tests.support.upstream import LoopbackServer

__all__ = ["GuardUpstream", "Request", "shell_call", "loop_events", "text_events", "call_events", "python_args", "mistyped_args"]


@dataclass
class Request:
    protocol: str
    path: str
    body: dict
    summary: RequestSummary
    headers: dict[str, str]

    @property
    def turn(self) -> int:
        """Assistant turns already in the conversation (0 for the first answer)."""
        return self.summary.assistant_turns


@dataclass
class Answer:
    chunks: int
    written: int = 0
    client_left: bool = False

    @property
    def complete(self) -> bool:
        return self.written == self.chunks and not self.client_left


def shell_call(req: Request, command: str) -> tuple[str, str, str]:
    """(tool name, tool kind, arguments JSON) for running `command` with the agent's shell tool."""
    return _shell_call(req.summary.tools, command)


def python_args(args_json: str) -> str:
    """Arguments as a model that writes Python dicts sends them: single quotes, True/None.
    Not JSON; every agent rejects it as is."""
    value = json.loads(args_json)
    return repr(value)


def mistyped_args(req: Request, name: str, args_json: str) -> str:
    """The arguments with one non-string parameter of the tool's schema (a boolean or a number)
    sent as a string, as models often do: `"false"`, `"60000"`. Representable on every wire,
    Gemini's included (its function-call arguments must be an object)."""
    tool = next(t for t in req.summary.tools if t.name == name)
    props = (tool.parameters or {}).get("properties") or {}
    args = json.loads(args_json)
    for key, schema in props.items():
        kind = schema.get("type") if isinstance(schema, dict) else None
        if kind == "boolean":
            args[key] = "false"
            break
        if kind in ("integer", "number"):
            args[key] = "60000"
            break
    else:
        raise AssertionError(f"{name} has no boolean or number parameter to mistype")
    return json.dumps(args)


def text_events(text: str, pieces: list[str] | None = None) -> list:
    parts = pieces if pieces is not None else [text[i : i + 24] for i in range(0, len(text), 24)]
    return [ev.MessageStart("msg_guard", "guard-model"), *(ev.TextDelta(p) for p in parts),
            ev.Usage(10, max(1, len(text) // 4)), ev.Stop("end_turn")]


def loop_events(lead: str, unit: str, repeats: int) -> list:
    """A lead-in, then `unit` over and over, one delta per unit (a model stuck in a loop)."""
    return text_events(lead + unit * repeats, [lead] + [unit] * repeats)


def call_events(name: str, kind: str, args: str, *, call_id: str = "call_guard_1", lead: str = "") -> list:
    events: list = [ev.MessageStart("msg_guard", "guard-model")]
    if lead:
        events.append(ev.TextDelta(lead))
    events += [ev.ToolCallStart(0, call_id, name, kind)]
    events += [ev.ToolCallArgsDelta(0, args[i : i + 16]) for i in range(0, len(args), 16)]
    events += [ev.ToolCallEnd(0), ev.Usage(10, 10), ev.Stop("tool_use")]
    return events


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format, *args):  # noqa: A002
        pass

    def _send(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self) -> None:
        up = self.server.upstream
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        endpoint = classify(path)
        protocol = endpoint.protocol or up.default_protocol
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        with up.lock:
            up.requests.append((self.command, self.path, headers, body))
        events = None
        with up.lock:
            failure = up.failures.pop(0) if endpoint.kind == "generate" and up.failures else None
        if failure is not None:
            status, data = failure
            self._send(status, "application/json", data)
            return
        if endpoint.kind == "generate" and isinstance(body, dict):
            summary = codec(protocol).summarize_request(body, path)
            if not summary.json_mode:
                events = up.scenario(Request(protocol, path, body, summary, headers))
        if events is None:
            reply = up.fallback.respond(protocol, self.command, path, body)
            self._send(reply.status, reply.content_type, reply.body)
            return
        if isinstance(events, tuple):  # (status, JSON body): the model's provider refuses
            status, doc = events
            self._send(status, "application/json", json.dumps(doc).encode())
            return
        c = codec(protocol)
        with up.lock:
            up.answered += 1
            response_id = f"msg_guard_{up.answered}"  # unique, as a real model's: agents group blocks by message id
        events = [ev.MessageStart(response_id, e.model) if e.kind == "message_start" else e for e in events]
        if not summary.stream:
            data = json.dumps(c.encode_response(events, summary.model or "guard-model", response_id)).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        enc = c.StreamEncoder(summary.model or "guard-model", response_id)
        chunks = [x for x in (*(enc.feed(e) for e in events), enc.finish()) if x]
        answer = Answer(len(chunks))
        with up.lock:
            up.answers.append(answer)
        self.send_response(200)
        self.send_header("content-type", enc.content_type)
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        try:
            for chunk in chunks:
                if up.chunk_delay_s:
                    time.sleep(up.chunk_delay_s)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                answer.written += 1
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            answer.client_left = True
            self.close_connection = True

    do_GET = do_POST = do_HEAD = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    upstream: "GuardUpstream"

    def handle_error(self, request, client_address) -> None:
        pass  # clients that leave mid-stream are the point of some tests


class GuardUpstream(LoopbackServer):
    """`with GuardUpstream(scenario) as up:` -> `up.url`, `up.requests`, `up.answers`.

    A scenario returns the answer's neutral events, None (the plain fallback answer)
    or `(status, JSON document)` for a refusal. With `ssl_context` it serves TLS.
    """

    def __init__(self, scenario: Callable[[Request], list | tuple | None], *, default_protocol: str = "anthropic_messages",
                 chunk_delay_s: float = 0.0, ssl_context=None) -> None:
        self.scenario = scenario
        self.default_protocol = default_protocol
        self.chunk_delay_s = chunk_delay_s
        self.fallback = ScriptedBackend(Script.from_toml('[[turns]]\ntext = "ok"\n', "<guard fallback>"))
        self.requests: list[tuple[str, str, dict, Any]] = []
        self.answers: list[Answer] = []
        self.answered = 0
        self.failures: list[tuple[int, bytes]] = []  # answers to the next model requests, instead of the scenario
        super().__init__(_Server, _Handler, ssl_context)

    def fail_next(self, status: int, body: dict) -> None:
        """Answer the next model request with `status` and `body` (JSON) instead of the scenario."""
        with self.lock:
            self.failures.append((status, json.dumps(body).encode()))

    def model_bodies(self) -> list[dict]:
        return [b for m, p, h, b in self.requests if isinstance(b, dict) and classify(p.split("?", 1)[0]).kind == "generate"]
