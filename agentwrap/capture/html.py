"""The HTML viewer: one self-contained page for a run (`agentwrap show RUN --html FILE`).

The page is rendered by Jinja2 from `viewer/page.html.j2` with autoescaping
on. Escaping happens in one place: every recorded value reaches the markup
through `{{ }}` (escaped for text and attributes) or through Jinja's
`tojson` filter (the data block, safe inside `<script>`); the page's script
writes recorded text only through `textContent`. The CSS and the script
(`viewer/viewer.css`, `viewer/viewer.js`) are inlined, and a
Content-Security-Policy forbids fetching anything: the page works offline
and shows only what it holds.

Static markup (readable without the script): the run, each request's facts,
routing, what it added to its conversation, the answer, guard actions,
errors and a cURL command. The script adds search, expand/collapse all,
copying, and each request's raw legs, built from the data block when opened
(`raw.ValueTable`: a long session's resent conversation is stored once).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from agentwrap.capture.bundle import Bundle, Exchange
from agentwrap.capture.cost import format_cost
from agentwrap.capture.raw import ValueTable, curl_command, curl_head, legs
from agentwrap.capture.render import ms_text, run_lines, shown_attempts, tokens_text
from agentwrap.capture.summary import final_upstream_request
from agentwrap.capture.turns import system_prompt, tool_names

__all__ = ["render_html"]

_VIEWER = Path(__file__).with_name("viewer")
# <system-reminder> blocks (Claude Code) inside messages and tool results: folded.
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.S)
_SURROGATE = re.compile("[\ud800-\udfff]")
LONG_TEXT_CHARS = 600  # a system or developer message longer than this is folded; tool results too


@functools.cache
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_VIEWER), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    # The data block keeps each body's keys in the order they were sent (Jinja sorts them by default).
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "separators": (",", ":")}
    env.filters["cost"] = format_cost
    env.filters["ms"] = ms_text
    env.filters["num"] = lambda n: f"{n:,}"
    return env


@functools.cache
def _asset(name: str) -> Any:
    """One of the viewer's own files, inlined as it is (ours, not recorded data: no escaping)."""
    from markupsafe import Markup

    return Markup((_VIEWER / name).read_text(encoding="utf-8"))


@functools.cache
def _csp() -> Any:
    """The page's Content-Security-Policy: nothing is fetched, and the only script that runs is
    the viewer's own (by its hash), so even markup that escaped escaping could not run code."""
    from markupsafe import Markup

    digest = base64.b64encode(hashlib.sha256(str(_asset("viewer.js")).encode()).digest()).decode()
    return Markup(f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'")


def segments(text: str) -> list[dict]:
    """`text` cut into plain runs and `<system-reminder>` blocks: `{"text", "reminder"}` each."""
    out: list[dict] = []
    at = 0
    for m in _REMINDER.finditer(text):
        if m.start() > at:
            out.append({"text": text[at:m.start()], "reminder": False})
        out.append({"text": m.group(0), "reminder": True})
        at = m.end()
    if at < len(text):
        out.append({"text": text[at:], "reminder": False})
    return [{"text": s["text"] if s["reminder"] else s["text"].strip("\n"), "reminder": s["reminder"]}
            for s in out if s["reminder"] or s["text"].strip()]


def _args(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), ensure_ascii=False, indent=2)
    except (ValueError, TypeError, RecursionError):
        return arguments


def _calls(calls: list[dict]) -> list[dict]:
    return [{"name": c["name"] or "?", "id": c["id"], "arguments": _args(c["arguments"] or "")} for c in calls]


def _message(m: dict) -> dict:
    results = []
    for r in m["tool_results"]:
        title = f"tool result {r['id'] or r['name']}{' (error)' if r['is_error'] else ''} · {len(r['content']):,} chars"
        results.append({"title": title, "segments": segments(r["content"]), "fold": len(r["content"]) > LONG_TEXT_CHARS,
                        "error": r["is_error"]})
    return {
        "role": m["role"],
        "thinking": m["thinking"],
        "segments": segments(m["text"]),
        "chars": len(m["text"]),
        "fold": m["role"] in ("system", "developer") and len(m["text"]) > LONG_TEXT_CHARS,
        "tool_results": results,
        "tool_calls": _calls(m["tool_calls"]),
    }


def _guard(g: dict) -> dict:
    rest = {k: v for k, v in g.items() if k not in ("guard", "action")}
    lines = [f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in rest.items()]
    return {"title": f"{g.get('guard', '?')} · {g.get('action', '?')}", "lines": lines}


def _facts(e: dict) -> list[tuple[str, str]]:
    requested = e["requested_model"] if e["requested_model"] != e["model"] else None
    rows = [
        ("model", e["model"]), ("requested model", requested), ("backend", e["backend"]), ("protocol", e["protocol"]),
        ("upstream", e["upstream_url"]), ("status", e["status"]),
        ("started", f"{e['started_ms'] / 1000:.3f} s into the run" if e["started_ms"] is not None else None),
        ("latency", ms_text(e["latency_ms"])), ("first byte", ms_text(e["ttfb_ms"])),
        ("tokens", tokens_text(e["tokens"])), ("cost", format_cost(e["cost_usd"]) if e["cost_usd"] is not None else None),
        ("stop", e["stop_reason"]),
        ("agent got", "a response agentwrap changed or made" if e["agent_response_differs"] else None),
    ]
    return [(k, str(v)) for k, v in rows if v not in (None, "")]


def _route(route: dict | None) -> str | None:
    if not route or not (route["reason"] or route["backend"]):
        return None
    text = route["reason"] or "routed"
    if route["backend"]:
        text += f" → {route['backend']}"
    if route["model"]:
        text += f", model {route['model']}"
    if route["fallbacks"]:
        text += f", fallbacks {', '.join(route['fallbacks'])}"
    return text


def _badges(e: dict) -> list[tuple[str, str]]:
    out = []
    if any(a["decision"] in ("failover", "retry") for a in e["attempts"]):
        out.append(("b-warn", f"{len(e['attempts'])} attempts"))
    if e["guards"]:
        out.append(("b-guard", f"guard {len(e['guards'])}"))
    if e["tool_calls"]:
        out.append(("b-tool", "→ " + ", ".join(c["name"] or "?" for c in e["tool_calls"])))
    if e["errors"] or (e["status"] or 0) >= 400:
        out.append(("b-err", "error"))
    if not e["complete"]:
        out.append(("b-warn", "unfinished"))
    return out


def _curl(ex: Exchange | None, raw: list[dict]) -> dict | None:
    """The cURL of the upstream request the answer came from: its head, and the leg holding its body."""
    final = final_upstream_request(ex) if ex is not None else None
    head = curl_head(final)
    if head is None:
        return None
    leg = next((i for i, leg in enumerate(raw) if leg.get("request") is final), None)
    if leg is None:  # not among the legs (never seen): the whole command in the page
        return {"head": curl_command(final).rstrip("\n"), "leg": None}
    return {"head": head, "leg": leg}


class _Context:
    """What one request's view needs from the ones before it: system prompts and tool lists."""

    def __init__(self) -> None:
        self.system: dict[int, str] = {}
        self.tools: dict[int, list[str]] = {}

    def prompt(self, e: dict, ex: Exchange | None) -> tuple[dict | None, dict | None]:
        body = ex.request.body.json if ex is not None and ex.request is not None else None
        system, tools = system_prompt(e["protocol"], body), tool_names(e["protocol"], body)
        self.system[e["id"]], self.tools[e["id"]] = system, tools
        prev = e["previous_request"]
        sys_view = tool_view = None
        if system:
            same = prev is not None and self.system.get(prev) == system
            sys_view = {"segments": segments(system), "chars": len(system), "same_as": prev if same else None}
        if tools:
            same = prev is not None and self.tools.get(prev) == tools
            tool_view = {"names": tools, "same_as": prev if same else None}
        return sys_view, tool_view


def _exchange(e: dict, ex: Exchange | None, ctx: _Context, table: ValueTable, run_ms: float) -> tuple[dict, list]:
    system, tools = ctx.prompt(e, ex)
    raw = legs(ex, table) if ex is not None else []
    left = width = 0.0
    if run_ms > 0 and e["started_ms"] is not None:
        left = min(100.0, 100 * e["started_ms"] / run_ms)
        width = min(100.0 - left, max(0.6, 100 * (e["latency_ms"] or 0) / run_ms))
    error = bool(e["errors"] or (e["status"] or 0) >= 400)
    view = {
        "e": e,
        "classes": " ".join(["ex", *(["err"] if error else []), *([] if e["complete"] else ["open-ended"])]),
        "status_class": "bad" if error else "ok",
        "tokens": tokens_text(e["tokens"]),
        "row_tokens": f"{e['tokens']['input_tokens']:,} in · {e['tokens']['output_tokens']:,} out" if e["tokens"] else "",
        "badges": _badges(e),
        "bar": (round(left, 2), round(width, 2)),
        "facts": _facts(e),
        "route": _route(e["route"]),
        "attempts": shown_attempts(e["attempts"]),
        "system": system,
        "tools": tools,
        "added": [_message(m) for m in e["messages_added"]],
        "unchanged": (e["messages_total"] or 0) - len(e["messages_added"]),
        "answer_calls": _calls(e["tool_calls"]),
        "guards": [_guard(g) for g in e["guards"]],
        "curl": _curl(ex, raw),
        "legs": [{"title": leg["title"], "head": leg["head"], "kind": leg["kind"]} for leg in raw],
    }
    return view, [leg["body"] for leg in raw]


def render_html(doc: dict, bundle: Bundle | None = None) -> str:
    """The page for a `to_json` document; `bundle` (the one `doc` was made from) adds the raw legs."""
    lines = run_lines(doc)
    by_id = {ex.id: ex for ex in bundle.exchanges} if bundle is not None else {}
    table, ctx = ValueTable(), _Context()
    duration = doc["run"]["duration_s"]
    run_ms = max([duration * 1000 if duration else 0.0] + [
        (e["started_ms"] or 0) + (e["latency_ms"] or 0) for e in doc["exchanges"]])
    exchanges, bodies = [], {}
    for e in doc["exchanges"]:
        view, raw = _exchange(e, by_id.get(e["id"]), ctx, table, run_ms)
        exchanges.append(view)
        bodies[str(e["id"])] = raw
    run, totals = doc["run"], doc["totals"]
    stats = [f"exit {run['exit_code']}" if run["exit_code"] is not None else "exit unknown"]
    if duration is not None:
        stats.append(f"{duration:.1f} s")
    stats.append(f"{totals['requests']} request{'s' if totals['requests'] != 1 else ''}")
    if totals["errors"]:
        stats.append(f"{totals['errors']} with errors")
    failovers = sum(1 for e in doc["exchanges"] for a in e["attempts"] if a["decision"] in ("failover", "retry"))
    if failovers:
        stats.append(f"{failovers} failover{'s' if failovers != 1 else ''}")
    guards = sum(len(e["guards"]) for e in doc["exchanges"])
    if guards:
        stats.append(f"{guards} guard action{'s' if guards != 1 else ''}")
    if totals["tokens"]:
        stats.append("tokens " + tokens_text(totals["tokens"]))
    if totals["cost_usd"] is not None:
        stats.append("cost " + format_cost(totals["cost_usd"], partial=totals["unpriced_requests"] > 0))
    page = _environment().get_template("page.html.j2").render(
        title=lines[0],
        run=run,
        stats=stats,
        doc=doc,
        exchanges=exchanges,
        data={"values": table.values, "ex": bodies},
        csp=_csp(),
        css=_asset("viewer.css"),
        js=_asset("viewer.js"),
    )
    # A recorded lone surrogate (JSON allows "\\ud800") cannot be written as UTF-8.
    return _SURROGATE.sub("\ufffd", page)
