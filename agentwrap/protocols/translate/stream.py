"""Protocol translation: an agent's request to a backend of another protocol,
and the backend's answer back, streaming or whole, errors included.

Theory of operation. `translate_request` decodes the agent's body into a
`NeutralRequest` and encodes it for the backend; the returned
`TranslationContext` remembers what the way back needs (tool names the
backend saw, freeform tools it saw as functions, Codex namespaces, the model
to report). `StreamTranslator` is a pipeline of stages with one shape:

    SseParser -> backend StreamDecoder -> _Adapter -> agent StreamEncoder

The adapter maps tool names back, turns a freeform tool's `{"input": ...}`
function arguments back into raw text, gives argument-less calls "{}", and,
when the protocols differ, seals the backend's opaque data (signatures,
encrypted reasoning) into the agent protocol's own opaque field (see
`request.seal`) so it comes back next turn and reaches only its producer.
A malformed or truncated upstream stream becomes the agent protocol's error
event, never a hang or a silent cut. Sans-IO.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from agentwrap.errors import UpstreamProtocol
from agentwrap.protocols import lane
from agentwrap.protocols._decoding import load_body
from agentwrap.protocols.neutral import NeutralEvent, StreamError, ThinkingDelta, ToolCallArgsDelta, ToolCallStart, Usage
from agentwrap.protocols.request import seal, wire_call_id, wire_tool_name
from agentwrap.protocols.sse import SseEvent, SseParser
from agentwrap.protocols.wire import codec

__all__ = ["TranslationContext", "TranslatedResponse", "StreamTranslator", "translate_request", "translate_response", "error_response"]

Headers = list[tuple[bytes, bytes]]

# Headers a backend needs that the agent of another protocol does not send.
_BACKEND_HEADERS: dict[str, Headers] = {"anthropic_messages": [(b"anthropic-version", b"2023-06-01")]}
_ID_PREFIX = {"anthropic_messages": "msg_", "openai_chat": "chatcmpl-", "openai_responses": "resp_", "gemini": ""}
_OPAQUE_FIELD = {"anthropic_messages": "signature", "openai_responses": "encrypted_content", "gemini": "thought_signature"}


@dataclass(slots=True)
class TranslationContext:
    """What the way back needs to know about one translated request."""

    agent_protocol: str
    backend_protocol: str
    agent_model: str  # reported to the agent, as it asked
    backend_model: str
    stream: bool
    response_id: str = ""  # "" = derive from the backend's id
    created: int = 0
    include_usage: bool = True  # Chat agents: stream_options.include_usage
    tool_names: dict[str, str] = field(default_factory=dict)  # backend wire name -> agent's name
    custom_tools: frozenset = frozenset()  # freeform tools the backend saw as functions
    namespaces: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (Codex namespace, short name)
    id_hint: str = ""  # makes ids the backend did not send unique per request
    notes: list[str] = field(default_factory=list)  # what was left out, for capture
    upstream_headers: Headers = field(default_factory=list)  # to add to the backend request


class TranslatedResponse(NamedTuple):
    status: int
    body: bytes
    headers: Headers


def translate_request(
    agent_protocol: str,
    body: Any,
    path: str,
    backend_protocol: str,
    model_override: str | None = None,
    *,
    response_id: str = "",
    created: int = 0,
    max_tokens_cap: int | None = None,
) -> tuple[str, dict, TranslationContext]:
    """(backend path, backend body, context) for an agent's request body.

    `path` is the agent's request path (Gemini carries model and streaming
    there). The backend path is relative to the backend base URL, as
    `endpoints.upstream_url` expects (OpenAI bases include /v1). Raises
    `RequestError` when the body holds something the backend cannot take.
    """
    req = codec(agent_protocol).decode_request(body, path)
    model = model_override or req.model
    if max_tokens_cap is not None and (req.max_tokens is None or req.max_tokens > max_tokens_cap):
        req.max_tokens = max_tokens_cap
    backend_path, backend_body = codec(backend_protocol).encode_request(req, model)
    # Without a response id from the caller, ids the backend leaves out are made
    # unique per turn from the history length and its newest message (cheap
    # even for a long history, stable for a retry of the same turn).
    hint = response_id or hashlib.sha1(f"{len(req.messages)}:{req.messages[-1:]!r}".encode()).hexdigest()[:16]
    namespaces = {}
    if agent_protocol == "openai_responses":
        namespaces = {t.name: (t.namespace, t.name[len(t.namespace) + 2 :]) for t in req.tools if t.namespace and t.name.startswith(t.namespace + "__")}
    ctx = TranslationContext(
        agent_protocol=agent_protocol,
        backend_protocol=backend_protocol,
        agent_model=req.model or model,
        backend_model=model,
        stream=req.stream,
        response_id=response_id,
        created=created,
        include_usage=agent_protocol != "openai_chat" or (isinstance(body, dict) and _include_usage(body)),
        tool_names={wire_tool_name(t.name, backend_protocol): t.name for t in req.tools},
        custom_tools=frozenset(t.name for t in req.tools if t.tool_kind == "custom") if backend_protocol != "openai_responses" else frozenset(),
        namespaces=namespaces,
        id_hint=hint,
        notes=list(req.notes),
        upstream_headers=[(b"content-type", b"application/json"), *_BACKEND_HEADERS.get(backend_protocol, [])],
    )
    if req.stream:
        ctx.upstream_headers.append((b"accept", b"text/event-stream"))
    return backend_path, backend_body, ctx


def _include_usage(body: dict) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _unwrap_input(text: str) -> str:
    """The raw input of a freeform call that went to the backend as a function."""
    try:
        value = json.loads(text)
    except ValueError:
        return text  # the model wrote the raw text itself: keep it
    if isinstance(value, dict):
        if isinstance(value.get("input"), str):
            return value["input"]
        strings = [v for v in value.values() if isinstance(v, str)]
        if len(value) == 1 and strings:
            return strings[0]
    return text


class _Adapter:
    """Neutral events from the backend, adjusted for the agent; see the module docstring."""

    def __init__(self, ctx: TranslationContext) -> None:
        self.ctx = ctx
        self.seal = ctx.agent_protocol != ctx.backend_protocol
        self._thinking: list[str] = []  # thinking text since the last sealed meta
        self._custom: dict[int, list[str]] = {}  # calls whose JSON wrapper is held back
        self._function: dict[int, bool] = {}  # function calls -> whether arguments came

    def _sealed(self, meta: Any) -> dict | None:
        key = _OPAQUE_FIELD.get(self.ctx.agent_protocol)
        if key is None or not isinstance(meta, dict):
            return None  # Chat has no opaque field: the data cannot survive the agent
        # Anthropic signatures cover the thinking text, so it travels along.
        text = "".join(self._thinking) if self.ctx.backend_protocol == "anthropic_messages" else ""
        self._thinking = []
        return {key: seal(self.ctx.backend_protocol, meta, text)}

    def feed(self, event: NeutralEvent) -> list[NeutralEvent]:
        kind = event.kind
        if kind == "thinking_delta":
            if not self.seal:
                return [event]
            if event.text:
                self._thinking.append(event.text)
            if event.provider_meta is None:
                return [event]
            sealed = self._sealed(event.provider_meta)
            return [ThinkingDelta(event.text, sealed)] if sealed is not None or event.text else []
        if kind == "text_delta":
            self._thinking = []
            return [event]
        if kind == "tool_call_start":
            return self._start(event)
        if kind == "tool_call_args_delta":
            if event.index in self._custom:
                self._custom[event.index].append(event.delta)
                return []
            if event.delta and event.index in self._function:
                self._function[event.index] = True
            return [event]
        if kind == "tool_call_end":
            return self._end(event.index) + [event]
        return [event]

    def text_seen(self) -> None:
        """Text deltas went by on the text lane (what `feed` does for each)."""
        self._thinking = []

    def _start(self, event: ToolCallStart) -> list[NeutralEvent]:
        self._thinking = []
        out: list[NeutralEvent] = []
        meta = event.provider_meta
        if meta is not None and self.seal:
            # A Gemini signature on a functionCall has no slot in other agents'
            # tool calls: it rides on an empty thinking block just before.
            # "next" tells the Gemini encoder the signature belongs on the part
            # after the thinking (this call), not on the thinking text itself.
            sealed = self._sealed({**meta, "next": True})
            if sealed is not None:
                out.append(ThinkingDelta("", sealed))
            meta = None
        name = self.ctx.tool_names.get(event.name, event.name)
        tool_kind = event.tool_kind
        if name in self.ctx.custom_tools and tool_kind == "function":
            tool_kind = "custom"
            self._custom[event.index] = []
        elif tool_kind == "function":
            self._function[event.index] = False
        if name in self.ctx.namespaces:
            namespace, name = self.ctx.namespaces[name]
            meta = {**(meta or {}), "namespace": namespace}
        call_id = wire_call_id(event.call_id, self.ctx.agent_protocol)
        out.append(ToolCallStart(event.index, call_id, name, tool_kind, provider_meta=meta))
        return out

    def _end(self, index: int) -> list[NeutralEvent]:
        if index in self._custom:
            text = _unwrap_input("".join(self._custom.pop(index)))
            return [ToolCallArgsDelta(index, text)] if text else []
        if self._function.pop(index, True) is False:
            return [ToolCallArgsDelta(index, "{}")]  # agents parse arguments; "" is not JSON
        return []

    def finish(self) -> list[NeutralEvent]:
        out: list[NeutralEvent] = []
        for index in list(self._custom):
            out += self._end(index)
        return out


def _agent_id(ctx: TranslationContext, backend_id: str) -> str:
    if ctx.response_id:
        return ctx.response_id
    base = re.sub(r"[^A-Za-z0-9_-]", "", backend_id)
    for prefix in ("msg_", "chatcmpl-", "resp_"):
        base = base.removeprefix(prefix)
    return _ID_PREFIX.get(ctx.agent_protocol, "") + (base or ctx.id_hint)


def _encoder(ctx: TranslationContext, response_id: str) -> Any:
    module = codec(ctx.agent_protocol)
    if ctx.agent_protocol == "openai_chat":
        return module.StreamEncoder(ctx.agent_model, response_id, created=ctx.created, include_usage=ctx.include_usage)
    if ctx.agent_protocol == "openai_responses":
        return module.StreamEncoder(ctx.agent_model, response_id, created=ctx.created)
    return module.StreamEncoder(ctx.agent_model, response_id)


def _counts(usage: Usage) -> list[int]:
    return [usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens]


class StreamTranslator:
    """Backend SSE bytes in, agent SSE bytes out; any split of the input works.

    Never raises on upstream data: a malformed or truncated stream ends with
    the agent protocol's error event. Plain text deltas take the text lane
    (lane.py) once `LANE_AFTER` of them have taken the general path.
    """

    content_type = "text/event-stream"
    LANE_AFTER = 3  # general-path text deltas before a template is learned: the shortest answers never pay for it
    LEARN_SLICE = 1024  # bytes of a large chunk parsed at a time while the lane is being learned
    HOLD_MAX = 64 * 1024  # a longer unfinished event goes to the parser (and its size limit)

    def __init__(self, ctx: TranslationContext) -> None:
        self.ctx = ctx
        self._parser = SseParser()
        self._decoder = codec(ctx.backend_protocol).StreamDecoder(ctx.id_hint)
        self._adapter = _Adapter(ctx)
        self._encoder: Any = None
        self._failed = False
        self._finished = False
        # The text lane: None until learned; False when this pair or stream has none.
        self._lane: Any = None if hasattr(self._decoder, "lane_ready") else False
        self._plain = 0  # text deltas seen on the general path
        self._held = b""  # an unfinished event the lane keeps from the parser
        self._usage_raw: list[bytes] = []  # usage objects the lane took, not yet merged
        self.lane_events = 0  # events translated on the lane (for tests and capture notes)
        self.lane_templates = 0  # templates learned (again when the stream's shape changed)
        self._eol = b""  # the stream's line end, from its first line: the lane's template uses it
        self._sep = b"\n\n"

    def _emit(self, events: Iterable[NeutralEvent]) -> bytes:
        out = []
        for event in events:
            if self._encoder is None:
                backend_id = event.id if event.kind == "message_start" else ""
                self._encoder = _encoder(self.ctx, _agent_id(self.ctx, backend_id))
            for adjusted in self._adapter.feed(event):
                out.append(self._encoder.feed(adjusted))
        return b"".join(out)

    def feed(self, chunk: bytes) -> bytes:
        """Translate one chunk of the backend's body."""
        if self._failed or self._finished:
            return b""
        out: list[bytes] = []
        try:
            if not self._eol and b"\n" in chunk:
                self._eol = b"\r\n" if chunk[chunk.index(b"\n") - 1 : chunk.index(b"\n")] == b"\r" else b"\n"
            if self._lane is None and len(chunk) > self.LEARN_SLICE:
                chunk = self._learning(chunk, out)
            if self._lane:
                chunk = self._run_lane(chunk, out)
            if chunk:
                self._general(self._parser.feed(chunk), out)
        except UpstreamProtocol as exc:
            out.append(self._fail("api_error", f"agentwrap: {exc}"))
        return b"".join(out)

    def _learning(self, chunk: bytes, out: list[bytes]) -> bytes:
        """Take a large chunk through the general path in slices until the lane is learned
        (or known absent), so that the rest of the chunk can take it; return the rest."""
        size, pos, end = self.LEARN_SLICE, 0, len(chunk)
        while self._lane is None and pos < end:
            self._general(self._parser.feed(chunk[pos : pos + size]), out)
            pos += size
            if self._failed:
                return b""
        return chunk[pos:] if pos < end else b""

    def _general(self, events: list[SseEvent], out: list[bytes]) -> None:
        if self._usage_raw:
            out.append(self._flush_usage())
        decode = self._decoder.feed
        for sse in events:
            neutral = decode(sse)
            out.append(self._emit(neutral))
            if self._lane is not False and neutral and neutral[0].kind == "text_delta":
                # A plain text delta: alone, or with the usage a Gemini chunk always carries.
                # LANE_AFTER of them in a row on this path (none on the lane between) learn
                # the template, or learn it again when the stream's shape has changed.
                if len(neutral) == 1 or (len(neutral) == 2 and neutral[1].kind == "usage" and self._decoder.lane_usage_key):
                    if self._lane and self._lane.matches(self._raw(sse)):
                        continue  # the lane's own kind, here only for where the chunk was cut
                    self._plain += 1
                    if self._plain >= self.LANE_AFTER:
                        self._plain = 0
                        self._learn(sse, neutral[0].text, len(neutral) == 2)

    def _raw(self, sse: SseEvent) -> bytes:
        """The event's bytes as the lane sees them (the stream's line ends, no id line)."""
        eol = self._eol.decode()
        return ((f"event: {sse.event}{eol}" if sse.event is not None else "") + f"data: {sse.data}{eol}{eol}").encode()

    def _learn(self, sse: SseEvent, text: str, with_usage: bool) -> None:
        if self._encoder is None or not hasattr(self._encoder, "text_run"):
            self._lane = False
            return
        decoder = self._decoder
        usage_key = decoder.lane_usage_key if with_usage else None
        template = lane.learn(self._raw(sse), text, decoder.lane_locate, decoder.lane_volatile, usage_key, self._eol)
        self.lane_templates += template is not None
        if template is not None or self._lane is None:
            self._lane = template or False
        self._sep = self._eol + self._eol

    def _run_lane(self, chunk: bytes, out: list[bytes]) -> bytes:
        """Translate `chunk` event by event, lane events on the lane and the others on the
        general path; return what is left for the parser. An unfinished last event is held
        back (not given to the parser) so that the next chunk can start on the lane.

        Events are framed at the stream's blank lines (LF or CRLF, as learned): any such
        blank line ends an event, so each piece given to the parser leaves it idle."""
        if self._held:
            chunk, self._held = self._held + chunk, b""
        parser, sep = self._parser, self._sep
        pos = 0
        if not parser.idle:  # the end of an event that began on the general path
            end = chunk.find(sep)
            if end < 0:
                return chunk
            pos = end + len(sep)
            self._general(parser.feed(chunk[:pos]), out)
        ready, find = self._decoder.lane_ready, chunk.find
        while self._lane and not self._failed and parser.idle and ready():
            template = self._lane  # learned again, maybe, by the general path below
            usages: list[bytes] | None = [] if template.has_usage else None
            literals, stop = template.scan(chunk, pos, usages)
            if literals:
                if not self._lane_run(literals, usages, out):
                    # The encoder cannot take them, or one is not UTF-8: the events before
                    # that one still take the lane, the general path decides from there.
                    pos = self._lane_one_by_one(template, chunk, pos, out)
                    break
                pos = stop
            end = find(sep, pos)
            if end < 0:
                if len(chunk) - pos > self.HOLD_MAX:
                    break
                self._held = chunk[pos:]
                return b""
            end += len(sep)
            self._general(parser.feed(chunk[pos:end]), out)
            pos = end
        return chunk[pos:] if pos else chunk

    def _lane_one_by_one(self, template: Any, chunk: bytes, pos: int, out: list[bytes]) -> int:
        """Take the lane's events at `pos` one at a time while each can; return where one could not."""
        while True:
            usages: list[bytes] | None = [] if template.has_usage else None
            literals, stop = template.scan(chunk, pos, usages, limit=1)
            if not literals or not self._lane_run(literals, usages, out):
                return pos
            pos = stop

    def _lane_run(self, literals: list[bytes], usages: list[bytes] | None, out: list[bytes]) -> bool:
        if usages:
            # Usage makes no bytes mid-stream in any encoder and merging keeps the latest
            # non-zero count of each kind, so a run's usage objects (valid JSON: the
            # template's grammar says so) are merged once, before the next event of the
            # general path or the end.
            last = self._usage_raw[-1] if self._usage_raw else None
            distinct = [u for u in usages if u != last and (last := u)]
        if b'""' in literals:
            literals = [lit for lit in literals if lit != b'""']  # empty texts make no delta
        if literals:
            joined = literals[0] if len(literals) == 1 else b",".join(literals)
            try:
                joined.decode()  # the template checked the escapes; this checks the UTF-8
            except UnicodeDecodeError:
                return False
            run = self._encoder.text_run(literals, joined)
            if run is None:
                return False
            self._adapter.text_seen()
            self.lane_events += len(literals)
            self._plain = 0
            out.append(run)
        if usages:
            self._usage_raw += distinct
        return True

    def _flush_usage(self) -> bytes:
        """Merge the usage the lane has held back into the encoder (no bytes, as a rule)."""
        raw = self._usage_raw
        self._usage_raw = []
        usage_of, keys = self._decoder.lane_usage, self._decoder.lane_usage_keys
        # The latest non-zero count of each kind: the last object's counts, and for a kind
        # it has none of, the latest earlier one that has (looked for only when one of that
        # kind's keys appears among the held objects at all).
        merged = usage_of(json.loads(raw[-1]))
        if len(raw) > 1:
            counts = _counts(merged)
            joined = b"".join(raw)
            need = [i for i, count in enumerate(counts) if not count and any(k in joined for k in keys[i])]
            n = len(raw) - 2
            while need and n >= 0:
                older = _counts(usage_of(json.loads(raw[n])))
                for i in [i for i in need if older[i]]:
                    counts[i] = older[i]
                    need.remove(i)
                n -= 1
            merged = Usage(*counts)
        return self._emit([merged])

    def finish(self) -> bytes:
        """End of the backend's body: the agent's closing events (or error), once."""
        if self._finished:
            return b""
        out = b""
        if not self._failed:
            try:
                if self._usage_raw:
                    out += self._flush_usage()
                held, self._held = self._held, b""
                for sse in self._parser.feed(held) + self._parser.finish():
                    out += self._emit(self._decoder.feed(sse))
                out += self._emit(self._decoder.finish())
                out += self._emit(self._adapter.finish())
            except UpstreamProtocol as exc:
                out += self._fail("api_error", f"agentwrap: {exc}")
        return out + self._close()

    def abort(self, error_type: str, message: str) -> bytes:
        """The transport failed mid-stream: the agent's error event and closing."""
        if self._finished:
            return b""
        out = b"" if self._failed else self._fail(error_type, message)
        return out + self._close()

    def _fail(self, error_type: str, message: str) -> bytes:
        self._failed = True
        if self._usage_raw:  # an error event may report the usage so far
            return self._flush_usage() + self._emit([StreamError(error_type, message, 504 if error_type == "timeout" else 502)])
        return self._emit([StreamError(error_type, message, 504 if error_type == "timeout" else 502)])

    def _close(self) -> bytes:
        self._finished = True
        if self._encoder is None:
            self._encoder = _encoder(self.ctx, _agent_id(self.ctx, ""))
        return self._encoder.finish()


# -- whole responses and errors ----------------------------------------------------

_RETRY_IN = re.compile(r"try again in (\d+(?:\.\d+)?)\s*(ms|s)\b", re.IGNORECASE)


def _retry_after(headers: Iterable[tuple[Any, Any]], body: bytes, message: str) -> float | None:
    """Seconds to wait, from Retry-After headers, Google RetryInfo or OpenAI's message."""
    for name, value in headers:
        name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        try:
            if name.lower() == "retry-after-ms":
                return float(value) / 1000
            if name.lower() == "retry-after":
                return float(value)
        except ValueError:
            continue  # an HTTP date: leave it to the agent's own backoff
    data = load_body(body)
    data = data[0] if isinstance(data, list) and data else data
    error = data.get("error") if isinstance(data, dict) else None
    for detail in error.get("details", []) if isinstance(error, dict) and isinstance(error.get("details"), list) else []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return float(delay[:-1])
            except ValueError:
                pass
    match = _RETRY_IN.search(message)
    if match:
        value = float(match.group(1))
        return value / 1000 if match.group(2).lower() == "ms" else value
    return None


def error_response(agent_protocol: str, error_type: str, message: str, retry_after: float | None = None, status: int | None = None) -> TranslatedResponse:
    """An error in the agent protocol's shape, with Retry-After kept where it applies."""
    if retry_after is not None and agent_protocol == "openai_responses" and not _RETRY_IN.search(message):
        # Codex reads the wait from the message text ("try again in Ns").
        message = f"{message} Please try again in {retry_after:g}s."
    code, body = codec(agent_protocol).encode_error(error_type, message, status)
    headers: Headers = [(b"content-type", b"application/json")]
    if retry_after is not None:
        headers.append((b"retry-after", str(max(1, round(retry_after))).encode()))
        if agent_protocol == "gemini":
            # Gemini CLI reads the delay from google.rpc.RetryInfo in the body.
            data = json.loads(body)
            data["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after:g}s"}]
            body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return TranslatedResponse(code, body, headers)


def translate_response(ctx: TranslationContext, status: int, body: bytes, headers: Iterable[tuple[Any, Any]] = ()) -> TranslatedResponse:
    """The agent's response for a whole backend response (an error, or a JSON body).

    For an agent that asked to stream, a whole 2xx body is rendered as the
    agent protocol's SSE stream.
    """
    backend = codec(ctx.backend_protocol)
    if status >= 400:
        error_type, message = backend.decode_error(status, body)
        return error_response(ctx.agent_protocol, error_type, message, _retry_after(headers, body, message))
    data = load_body(body)
    if not isinstance(data, (dict, list)):
        return error_response(ctx.agent_protocol, "api_error", "agentwrap: the upstream answered with a body that is not JSON", status=502)
    adapter = _Adapter(ctx)
    events: list[NeutralEvent] = []
    try:
        for event in backend.decode_response(data):
            events += adapter.feed(event)
    except UpstreamProtocol as exc:
        return error_response(ctx.agent_protocol, "api_error", f"agentwrap: {exc}", status=502)
    events += adapter.finish()
    error = next((e for e in events if e.kind == "stream_error"), None)
    if error is not None:
        return error_response(ctx.agent_protocol, error.error_type, error.message, _retry_after(headers, body, error.message))
    backend_id = next((e.id for e in events if e.kind == "message_start"), "")
    response_id = _agent_id(ctx, backend_id)
    if ctx.stream:
        encoder = _encoder(ctx, response_id)
        out = b"".join(encoder.feed(e) for e in events) + encoder.finish()
        return TranslatedResponse(200, out, [(b"content-type", b"text/event-stream")])
    agent = codec(ctx.agent_protocol)
    if ctx.agent_protocol in ("openai_chat", "openai_responses"):
        rendered = agent.encode_response(events, ctx.agent_model, response_id, created=ctx.created)
    else:
        rendered = agent.encode_response(events, ctx.agent_model, response_id)
    return TranslatedResponse(200, json.dumps(rendered, ensure_ascii=False, separators=(",", ":")).encode(), [(b"content-type", b"application/json")])
