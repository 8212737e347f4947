"""Request and response shapes of real agent sessions, shared by the capture tests and
bench/capture_bench.py, plus a helper that records a session through a real Recorder."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

from agentwrap.capture.recorder import Recorder
from agentwrap.protocols.codec import codec
from agentwrap.protocols.neutral import MessageStart, Stop, TextDelta, ToolCallArgsDelta, ToolCallEnd, ToolCallStart, Usage

SECRET = "aw-session-secret-0123456789abcdef"
PROVIDER_KEY = "sk-ant-api03-TESTKEY-0123456789abcdefghijklmnop"
HEADERS = [
    (b"host", b"127.0.0.1:43210"),
    (b"content-type", b"application/json"),
    (b"anthropic-version", b"2023-06-01"),
    (b"x-api-key", SECRET.encode()),
    (b"user-agent", b"claude-cli/2.1.332 (external, cli)"),
]
UPSTREAM_HEADERS = [
    (b"content-type", b"application/json"),
    (b"anthropic-version", b"2023-06-01"),
    (b"accept-encoding", b"identity"),
    (b"x-api-key", PROVIDER_KEY.encode()),
]
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"request-id", b"req_011CXyz")]


def dumps(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def words(rng: random.Random, n_chars: int) -> str:
    vocab = ["the", "function", "returns", "None", "when", "file", "path", "error", "test", "value", "self", "import",
             "def", "class", "data", "→", "naïve", "résumé", "line", "config", "update", "😀"]
    out: list[str] = []
    size = 0
    while size < n_chars:
        w = rng.choice(vocab)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)


def tools_prefix(rng: random.Random, total_chars: int = 50_000) -> tuple[list[dict], list[dict]]:
    """A Claude-Code-like system prompt (blocks) and tool list of about `total_chars`."""
    system = [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": words(rng, total_chars // 5), "cache_control": {"type": "ephemeral"}},
    ]
    tools = []
    per_tool = (total_chars * 4 // 5) // 16
    for i in range(16):
        tools.append({
            "name": f"Tool{i}",
            "description": words(rng, per_tool - 200),
            "input_schema": {"type": "object", "properties": {"command": {"type": "string", "description": "what to run"}},
                             "required": ["command"], "additionalProperties": False},
        })
    return system, tools


def synthetic_bodies(turns: int = 100, msg_chars: int = 2000, seed: int = 1) -> Iterator[bytes]:
    """A conversation growing by one ~msg_chars message per turn, resent whole each turn."""
    rng = random.Random(seed)
    messages: list[dict] = []
    for turn in range(turns):
        role = "user" if turn % 2 == 0 else "assistant"
        messages.append({"role": role, "content": words(rng, msg_chars)})
        yield dumps({"model": "claude-sonnet-4-5", "max_tokens": 8192, "stream": True, "messages": messages})


def claude_code_bodies(turns: int = 100, msg_chars: int = 2000, prefix_chars: int = 50_000, seed: int = 2) -> Iterator[bytes]:
    """Claude Code's shape: a ~50 KB system + tools prefix resent every turn, a tool_use /
    tool_result pair added per turn, `cache_control` moved to the newest message."""
    rng = random.Random(seed)
    system, tools = tools_prefix(rng, prefix_chars)
    messages: list[dict] = [{"role": "user", "content": [{"type": "text", "text": words(rng, 300)}]}]
    for turn in range(turns):
        shown = [dict(m) for m in messages]
        last = dict(shown[-1])
        last["content"] = [dict(b) for b in last["content"]]
        last["content"][-1]["cache_control"] = {"type": "ephemeral"}
        shown[-1] = last
        yield dumps({
            "model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": True, "system": system, "tools": tools,
            "messages": shown, "metadata": {"user_id": "user_abc123_account__session_5f1c"},
            "thinking": {"type": "enabled", "budget_tokens": 4000},
        })
        call_id = f"toolu_{turn:04d}"
        messages.append({"role": "assistant", "content": [
            {"type": "text", "text": words(rng, 150)},
            {"type": "tool_use", "id": call_id, "name": "Tool0", "input": {"command": f"cat file{turn}.py"}},
        ]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call_id, "content": words(rng, msg_chars)},
        ]})


def anthropic_answer(
    text: str, *, tool: tuple[str, str, str] | None = None, usage=(1200, 80, 1000, 0), delta_chars: int = 40
) -> list[bytes]:
    """An Anthropic SSE answer as the chunks an upstream sends (one per event)."""
    enc = codec("anthropic_messages").StreamEncoder("claude-sonnet-4-5", "msg_01")
    events: list = [MessageStart("msg_01", "claude-sonnet-4-5"), Usage(*usage)]
    for i in range(0, len(text), delta_chars):
        events.append(TextDelta(text[i:i + delta_chars]))
    if tool:
        events += [ToolCallStart(0, tool[0], tool[1]), ToolCallArgsDelta(0, tool[2]), ToolCallEnd(0)]
    events.append(Stop("tool_use" if tool else "end_turn"))
    chunks = [enc.feed(e) for e in events] + [enc.finish()]
    return [c for c in chunks if c]


def record_session(path: Path, bodies, *, answer_chars: int = 400, secrets=(SECRET, PROVIDER_KEY), **kw) -> Recorder:
    """Record one exchange per body (all four legs) and close the bundle; returns the recorder."""
    rng = random.Random(7)
    rec = Recorder(str(path), {"agent": "claude", "run_id": "0123abcd", "argv": ["claude", "-p", "hi"]}, secrets, **kw)
    for body in bodies:
        xid = rec.exchange("POST", f"/{SECRET}/v1/messages", HEADERS, body)
        rec.route(xid, {"backend": "anthropic", "model": "claude-sonnet-4-5", "reason": "default route"})
        rec.upstream_request(xid, "POST", "https://api.anthropic.com/v1/messages", UPSTREAM_HEADERS, body)
        rec.upstream_response(xid, 200, SSE_HEADERS)
        for c in anthropic_answer(words(rng, answer_chars)):
            rec.chunk(xid, c)
        rec.end(xid)
    rec.close({"exit_code": 0, "duration_s": 1.5})
    return rec


def test_shapes_are_valid_json() -> None:
    for body in list(synthetic_bodies(3)) + list(claude_code_bodies(3, prefix_chars=5000)):
        assert isinstance(json.loads(body), dict)


def _strip_marks(v):
    if isinstance(v, dict):
        return {k: _strip_marks(x) for k, x in v.items() if k != "cache_control"}
    if isinstance(v, list):
        return [_strip_marks(x) for x in v]
    return v


def unique_content(bodies: list[bytes], response_bytes: int, exchanges: int) -> int:
    """What an ideal recorder must keep: each distinct conversation message and each
    distinct prefix value (system, tools) once (a message that differs only by a moved
    `cache_control` counts once), every request's remaining fields, every response byte,
    and each exchange's request lines and headers on both legs."""
    seen: set[str] = set()
    total = response_bytes
    for body in bodies:
        obj = json.loads(body)
        for key, value in obj.items():
            if key == "messages":
                for m in value:
                    text = json.dumps(_strip_marks(m), ensure_ascii=False, separators=(",", ":"))
                    if text not in seen:
                        seen.add(text)
                        total += len(text.encode())
            elif key in ("system", "tools"):
                text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
                if text not in seen:
                    seen.add(text)
                    total += len(text.encode())
            else:
                total += len(dumps({key: value}))
    heads = sum(len(n) + len(v) for n, v in HEADERS + UPSTREAM_HEADERS + SSE_HEADERS)
    heads += len(f"POST /{SECRET}/v1/messages") + len("POST https://api.anthropic.com/v1/messages") + 3
    return total + exchanges * heads
