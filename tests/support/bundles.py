"""Bundles for the records tests, written by a real `Recorder` as the dispatcher would.

`record_run` writes one run into a capture directory under the name a session
gives it; `copy_run` makes many cheaply (the same bytes under other names).
"""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from agentwrap.capture.recorder import Recorder
from agentwrap.capture.runs import bundle_filename
from agentwrap.protocols.codec import codec
from agentwrap.protocols.neutral import MessageStart, Stop, TextDelta, Usage

ANTHROPIC = "https://api.anthropic.com"
T0 = datetime(2026, 11, 20, 9, 0, 0, tzinfo=timezone.utc)


def dumps(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class Turn:
    """One request of the agent and how it went."""

    prompt: str = "hello"
    answer: str = "Hi there."
    model: str = "claude-sonnet-4-5"
    routed_model: str | None = None  # the route's model rewrite, if any
    upstream: str | None = ANTHROPIC  # None: a scripted (local) answer
    usage: tuple[int, int, int, int] = (1000, 100, 0, 0)  # input (whole prompt), output, cache read, cache write
    status: int = 200
    # failover: attempts before the one that answered: (backend, upstream base URL or None, outcome, status)
    failed_attempts: list[tuple[str, str | None, str, int | None]] = field(default_factory=list)
    answering_backend: str = "main"


def _stream(model: str, text: str, usage: tuple[int, int, int, int]) -> list[bytes]:
    enc = codec("anthropic_messages").StreamEncoder(model, "msg_1")
    events = [MessageStart("msg_1", model), Usage(*usage), TextDelta(text), Stop("end_turn")]
    return [c for c in [enc.feed(e) for e in events] + [enc.finish()] if c]


def record_run(
    directory: Path,
    *,
    agent: str = "claude",
    profile: str = "work",
    run_id: str = "a1b2c3d4",
    started: datetime = T0,
    turns: list[Turn] | None = None,
    exit_code: int | None = 0,
    run_errors: list[tuple[str, str]] = (),
    close: bool = True,
    argv: list[str] | None = None,
) -> Path:
    """Record one run as a session would (name from `bundle_filename`); `close=False` leaves
    it without a footer, as a killed or still running session does."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / bundle_filename(agent, run_id, started)
    clock = itertools.count(0, 1_000_000)
    header = {"agent": agent, "agent_version": "2.1.332", "profile": profile, "run_id": run_id,
              "started_at": started.isoformat().replace("+00:00", "Z"), "argv": argv or [agent, "-p", "hello"],
              "cwd": "/src/project"}
    rec = Recorder(str(path), header, [], clock_ns=clock.__next__)
    for turn in turns if turns is not None else [Turn()]:
        body = {"model": turn.model, "max_tokens": 1024, "stream": True,
                "messages": [{"role": "user", "content": turn.prompt}]}
        xid = rec.exchange("POST", "/[REDACTED]/v1/messages", [(b"content-type", b"application/json")], dumps(body))
        routed = turn.routed_model or turn.model
        fallbacks = [turn.answering_backend] if turn.failed_attempts else []
        first_backend = turn.failed_attempts[0][0] if turn.failed_attempts else turn.answering_backend
        rec.route(xid, {"backend": first_backend, "model": routed, "requested_model": turn.model,
                        "reason": "routes[0]: always", "fallbacks": fallbacks})
        for n, (backend, base, outcome, status) in enumerate(turn.failed_attempts, 1):
            if base is not None:
                rec.upstream_request(xid, "POST", base + "/v1/messages", [], dumps({**body, "model": routed}))
                if status is not None:
                    rec.upstream_response(xid, status, [(b"content-type", b"application/json")])
                else:
                    rec.error(xid, "upstream_unreachable", f"cannot connect to {base}")
            rec.route(xid, {"attempt": n, "backend": backend, "outcome": outcome, "decision": "failover",
                            "why": f"{outcome} from {backend}: trying fallback {turn.answering_backend}"})
        sent_model = turn.model if turn.failed_attempts else routed
        if turn.upstream is not None:
            rec.upstream_request(xid, "POST", turn.upstream + "/v1/messages", [], dumps({**body, "model": sent_model}))
        if turn.status >= 400:
            rec.upstream_response(xid, turn.status, [(b"content-type", b"application/json")])
            rec.chunk(xid, dumps({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}))
        else:
            rec.upstream_response(xid, 200, [(b"content-type", b"text/event-stream")])
            for c in _stream(sent_model, turn.answer, turn.usage):
                rec.chunk(xid, c)
        if turn.failed_attempts:
            rec.route(xid, {"attempt": len(turn.failed_attempts) + 1, "backend": turn.answering_backend,
                            "outcome": "success", "decision": "done", "why": f"{turn.answering_backend} answered"})
        rec.end(xid)
    for kind, message in run_errors:
        rec.error(None, kind, message)
    rec.close({"exit_code": exit_code, "duration_s": 12.5})
    if not close:
        cut_footer(path)
    return path


def cut_footer(path: Path) -> None:
    """Drop the footer and its locator: the bundle of a killed (or still running) session."""
    data = path.read_bytes()
    offset = int.from_bytes(data[-8:], "big")
    path.write_bytes(data[:offset])


def copy_run(source: Path, directory: Path, n: int, *, start: datetime = T0, agent: str = "claude") -> list[Path]:
    """`n` copies of a bundle under session-style names, one minute apart, ids 00000000, 00000001, ..."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = directory / bundle_filename(agent, f"{i:08x}", start + timedelta(minutes=i))
        shutil.copyfile(source, path)
        out.append(path)
    return out
