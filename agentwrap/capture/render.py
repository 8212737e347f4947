"""Show a bundle: one JSON document, a terminal transcript, or one HTML file.

All three are built from the same per-exchange summary (`to_json`), so they
always agree. Incomplete bundles are shown up to where they end and say so.
"""

from __future__ import annotations

import json

from agentwrap.capture.answers import TOKEN_FIELDS, AnswerReader
from agentwrap.capture.cost import format_cost, request_cost, run_time
from agentwrap.capture.bundle import Bundle, Exchange
from agentwrap.capture.summary import (
    attempts_view, content_type_header, final_backend, final_upstream_request, requested_model, route_view, routed_model,
)
from agentwrap.capture.turns import conversation, describe, previous_turn
from agentwrap.cli_output import SCHEMA_VERSION
from agentwrap.protocols.endpoints import protocol_of_target
from agentwrap.protocols.sse import is_sse

__all__ = ["to_json", "to_text", "to_html"]

_RUN_FIELDS = (
    "run_id", "agent", "agent_version", "agentwrap_version", "profile", "profile_hash", "started_at", "cwd", "argv",
)


def _ms(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 1)


def _answer(ex: Exchange, protocol: str | None):
    reader = AnswerReader(protocol, sse=is_sse(content_type_header(ex)))
    for piece in ex.agent_stream():
        reader.feed(piece)
    return reader.finish()


def _first_byte_ns(ex: Exchange) -> int | None:
    times = [c[0].at_ns for c in (ex.chunks, ex.agent_chunks) if c]
    if ex.agent_response is not None and ex.agent_response.body is not None:
        times.append(ex.agent_response.at_ns)
    return min(times) if times else None


def _exchange(ex: Exchange, protocol: str | None, added: list[dict], n_messages: int | None, previous: int | None, at) -> dict:
    req = ex.request
    route = route_view(ex)
    answer = _answer(ex, protocol)
    model = routed_model(ex) if (ex.route or ex.upstream_request is not None) else None
    model = model or answer.model or requested_model(ex)
    sent = final_upstream_request(ex)
    upstream_url = sent.target if sent is not None else None
    start = req.at_ns if req is not None else None
    first = _first_byte_ns(ex)
    errors = [{"kind": e.kind, "message": e.message} for e in ex.errors]
    # An error event agentwrap appended repeats a recorded error's message: show it once.
    errors += [{"kind": "response", "message": m} for m in answer.errors if not any(e["message"] in m for e in errors)]
    return {
        "id": ex.id,
        "method": req.method if req else None,
        "path": ex.path,
        "protocol": protocol,
        "model": model,
        "requested_model": requested_model(ex),
        "backend": final_backend(ex),
        "route_reason": route["reason"] if route else None,
        "route": route,
        "attempts": attempts_view(ex),
        "upstream_url": upstream_url,
        "status": ex.status,
        "complete": ex.complete,
        "started_ms": _ms(start),
        "latency_ms": _ms(ex.end_ns - start) if ex.end_ns is not None and start is not None else None,
        "ttfb_ms": _ms(first - start) if first is not None and start is not None else None,
        "tokens": answer.usage,
        "cost_usd": request_cost(model, upstream_url, answer.usage, at),
        "stop_reason": answer.stop_reason,
        "messages_total": n_messages,
        "previous_request": previous,
        "messages_added": added,
        "tool_results": [r for m in added for r in m["tool_results"]],
        "tool_calls": answer.tool_calls,
        "answer": answer.text,
        "thinking": answer.thinking,
        "errors": errors,
        "guards": ex.guards,
        "agent_response_differs": ex.agent_response is not None or bool(ex.agent_chunks),
    }


def to_json(bundle: Bundle) -> dict:
    """The run as one JSON-ready document (`"schema": 1`)."""
    header, footer = bundle.header, bundle.footer or {}
    at = run_time(header.get("started_at"))
    history: dict[str | None, list[list]] = {}
    history_ids: dict[str | None, list[int]] = {}
    exchanges = []
    for ex in bundle.exchanges:
        protocol = protocol_of_target(ex.request.target) if ex.request else None
        body = ex.request.body.json if ex.request is not None else None
        conv = conversation(protocol, body)
        added: list[dict] = []
        previous = None
        if conv is not None:
            earlier, ids = history.setdefault(protocol, []), history_ids.setdefault(protocol, [])
            at_prev, shared = previous_turn(conv, earlier, protocol)
            previous = ids[at_prev] if at_prev is not None else None
            added = [describe(protocol, m) for m in conv[shared:]]
            earlier.append(conv)
            ids.append(ex.id)
        exchanges.append(_exchange(ex, protocol, added, len(conv) if conv is not None else None, previous, at))
    tokens: dict[str, int] | None = None
    cost: float | None = None
    unpriced = 0
    for e in exchanges:
        if e["tokens"]:
            tokens = tokens or dict.fromkeys(TOKEN_FIELDS, 0)
            for k in TOKEN_FIELDS:
                tokens[k] += e["tokens"].get(k, 0)
            if e["cost_usd"] is not None:
                cost = (cost or 0.0) + e["cost_usd"]
            elif any(e["tokens"].values()):
                unpriced += 1
    last_ns = max((x.end_ns or (x.request.at_ns if x.request else 0) for x in bundle.exchanges), default=0)
    duration = footer.get("duration_s")
    if duration is None:
        duration = round((footer.get("at") or last_ns) / 1e9, 3)
    return {
        "schema": SCHEMA_VERSION,
        "bundle": {"path": bundle.path, "format_version": bundle.version, "complete": bundle.complete},
        "run": {**{k: header.get(k) for k in _RUN_FIELDS}, "exit_code": footer.get("exit_code"), "duration_s": duration},
        "totals": {
            "requests": len(exchanges),
            "errors": sum(1 for e in exchanges if e["errors"] or (e["status"] or 0) >= 400) + len(bundle.errors),
            "tokens": tokens,
            "cost_usd": round(cost, 8) if cost is not None else None,
            "unpriced_requests": unpriced,
        },
        "errors": [{"kind": e.kind, "message": e.message} for e in bundle.errors],
        "exchanges": exchanges,
    }


# -- terminal transcript ---------------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def _indent(text: str, prefix: str = "      ") -> str:
    return text.replace("\n", "\n" + prefix)


def tokens_text(tokens: dict | None) -> str:
    """Token usage as shown (text and HTML views): `in 10,300 / out 520 (cached 8,000, cache writes 900)`."""
    if not tokens:
        return ""
    text = f"in {tokens['input_tokens']:,} / out {tokens['output_tokens']:,}"
    cache = [f"{label} {tokens[k]:,}" for k, label in (("cache_read_tokens", "cached"), ("cache_write_tokens", "cache writes"))
             if tokens.get(k)]
    return text + (f" ({', '.join(cache)})" if cache else "")


def ms_text(ms: float | None) -> str:
    """A duration in ms as shown: `840 ms`, `1.25 s` (text and HTML views)."""
    if ms is None:
        return ""
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def exchange_line(e: dict) -> str:
    """The one-line heading of an exchange (shared with the HTML view)."""
    parts = [f"#{e['id']}", f"{e['method'] or '?'} {e['path']}"]
    if e["model"]:
        parts.append(str(e["model"]) + (f" via {e['backend']}" if e["backend"] else ""))
    parts.append(str(e["status"]) if e["status"] is not None else "no response")
    if e["latency_ms"] is not None:
        parts.append(ms_text(e["latency_ms"]) + (f" (first byte {ms_text(e['ttfb_ms'])})" if e["ttfb_ms"] is not None else ""))
    if e["tokens"]:
        parts.append(tokens_text(e["tokens"]))
    if e["cost_usd"] is not None:
        parts.append(format_cost(e["cost_usd"]))
    if not e["complete"]:
        parts.append("unfinished")
    return "  ".join(parts)


def shown_attempts(attempts: list[dict]) -> list[dict]:
    """The attempts worth a line: none when the first one simply succeeded (the heading says it)."""
    if len(attempts) == 1 and attempts[0]["decision"] == "done":
        return []
    return attempts


def route_lines(e: dict) -> list[str]:
    """The routing decision and every attempt, one line each (shared with the HTML view)."""
    lines = []
    route = e["route"]
    if route and (route["reason"] or route["backend"]):
        text = f"route: {route['reason'] or 'routed'}"
        if route["backend"]:
            text += f" → {route['backend']}"
        if route["model"]:
            text += f", model {route['model']}"
            if route["requested_model"] and route["requested_model"] != route["model"]:
                text += f" (asked for {route['requested_model']})"
        if route["fallbacks"]:
            text += f", fallbacks {', '.join(route['fallbacks'])}"
        lines.append(text)
    for a in shown_attempts(e["attempts"]):
        head = f"attempt {a['number'] if a['number'] is not None else '?'} on {a['backend'] or '?'}"
        if a["model"]:
            head += f" ({a['model']})"
        detail = a["why"] or ", ".join(x for x in (a["outcome"], a["decision"]) if x) or "no outcome recorded"
        lines.append(f"{head}: {detail}")
    return lines


def run_lines(doc: dict) -> list[str]:
    """Heading lines of the run (shared with the HTML view)."""
    run, totals = doc["run"], doc["totals"]
    head = f"agentwrap run {run['started_at'] or '?'}  {run['agent'] or '?'}"
    if run["agent_version"]:
        head += f" {run['agent_version']}"
    if run["profile"]:
        head += f"  profile {run['profile']}"
    lines = [head]
    if run["argv"]:
        lines.append("argv: " + " ".join(str(a) for a in run["argv"]) + (f"    cwd: {run['cwd']}" if run["cwd"] else ""))
    summary = [f"exit {run['exit_code']}" if run["exit_code"] is not None else "exit unknown"]
    if run["duration_s"] is not None:
        summary.append(f"{run['duration_s']:.1f} s")
    summary.append(f"{totals['requests']} request{'s' if totals['requests'] != 1 else ''}")
    if totals["errors"]:
        summary.append(f"{totals['errors']} with errors")
    if totals["tokens"]:
        summary.append("tokens " + tokens_text(totals["tokens"]))
    if totals["cost_usd"] is not None:
        summary.append("cost " + format_cost(totals["cost_usd"], partial=totals["unpriced_requests"] > 0))
    lines.append(" · ".join(summary))
    if not doc["bundle"]["complete"]:
        lines.append("INCOMPLETE: the bundle ends early (agentwrap did not finish the run); shown up to where it ends.")
    return lines


def to_text(bundle: Bundle, *, max_chars: int = 600) -> str:
    """A readable transcript; long texts are clipped to `max_chars`."""
    doc = to_json(bundle)
    out = run_lines(doc)
    for err in doc["errors"]:
        out.append(f"error {err['kind']}: {err['message']}")
    for e in doc["exchanges"]:
        out.append("")
        out.append("── " + exchange_line(e))
        out.extend(f"   {line}" for line in route_lines(e))
        for m in e["messages_added"]:
            if m["text"]:
                out.append(f"   {m['role']}: {_indent(_clip(m['text'], max_chars))}")
            for r in m["tool_results"]:
                flag = " (error)" if r["is_error"] else ""
                out.append(f"   tool result {r['id'] or r['name']}{flag}: {_indent(_clip(r['content'], max_chars))}")
            for c in m["tool_calls"]:
                out.append(f"   {m['role']} tool call {c['name']}: {_clip(c['arguments'], max_chars)}")
        if e["thinking"]:
            out.append(f"   ← thinking: {_indent(_clip(e['thinking'], max_chars))}")
        if e["answer"]:
            out.append(f"   ← answer: {_indent(_clip(e['answer'], max_chars))}")
        for c in e["tool_calls"]:
            out.append(f"   ← tool call {c['name']} ({c['id']}): {_clip(c['arguments'], max_chars)}")
        for g in e["guards"]:
            out.append(f"   guard: {json.dumps(g, ensure_ascii=False, default=str)}")
        for err in e["errors"]:
            out.append(f"   ! {err['kind']}: {_indent(_clip(err['message'], max_chars))}")
    return "\n".join(out) + "\n"


def to_html(bundle: Bundle) -> str:
    """One self-contained HTML page (inline CSS, no network at view time)."""
    from agentwrap.capture.html import render_html

    return render_html(to_json(bundle), bundle)
