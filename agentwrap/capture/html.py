"""The HTML view of a run: one self-contained page built from `render.to_json`.

Everything recorded is escaped; the page loads nothing (a Content-Security-
Policy forbids any fetch) and needs no script to read: exchanges are
`<details>` elements; two buttons expand or collapse them all.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from agentwrap.capture.cost import format_cost
from agentwrap.capture.render import exchange_line, run_lines, shown_attempts

__all__ = ["render_html"]

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{padding:16px 24px;background:#1d2330;color:#f6f7f9}
header h1{font-size:18px;margin:0 0 6px}
header p{margin:2px 0;color:#c9cfdb}
.banner{background:#fff3cd;color:#5c4400;padding:8px 24px;border-bottom:1px solid #e6d28a}
main{padding:12px 24px}
button{font:inherit;margin:8px 8px 0 0}
details.ex{background:#fff;border:1px solid #d8dce4;border-radius:6px;margin:8px 0}
details.ex>summary{cursor:pointer;padding:8px 12px;font-family:ui-monospace,monospace;font-size:13px}
details.ex.err>summary{background:#fdecec}
details.ex.open-ended>summary{background:#fff8e1}
.inner{padding:4px 16px 12px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:8px 0;font-size:13px}
dt{color:#5a6478}dd{margin:0;word-break:break-all}
.msg{border-left:4px solid #9aa3b5;padding:4px 10px;margin:8px 0;background:#fafbfc}
.msg.user{border-color:#3a7bd5}.msg.assistant{border-color:#2e9e6a}.msg.tool{border-color:#b07b20}
.msg.system,.msg.developer{border-color:#7a5cc2}
.role{font-weight:600;font-size:12px;text-transform:uppercase;color:#5a6478}
pre{white-space:pre-wrap;word-break:break-word;margin:4px 0;font:12.5px/1.4 ui-monospace,monospace}
.answer{border-left:4px solid #2e9e6a;padding:4px 10px;margin:10px 0;background:#f2fbf6}
.call{margin:4px 0}.call b{font-family:ui-monospace,monospace}
.error{color:#a11;background:#fdecec;padding:4px 8px;margin:6px 0;border-radius:4px}
h3{font-size:13px;margin:12px 0 4px;color:#5a6478}
table.attempts{border-collapse:collapse;font-size:13px;margin:4px 0}
table.attempts th,table.attempts td{border:1px solid #d8dce4;padding:2px 8px;text-align:left;vertical-align:top}
table.attempts th{background:#f0f2f5;color:#5a6478;font-weight:600}
"""

_JS = """
function setAll(open){document.querySelectorAll('details').forEach(function(d){d.open=open;});}
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _pre(text: str) -> str:
    return f"<pre>{_e(text)}</pre>"


def _fold(title: str, content: str, open_: bool = False) -> str:
    return f"<details{' open' if open_ else ''}><summary>{_e(title)}</summary>{content}</details>"


def _calls(calls: list[dict]) -> str:
    out = []
    for c in calls:
        args = c.get("arguments") or ""
        try:
            args = json.dumps(json.loads(args), ensure_ascii=False, indent=2)
        except (ValueError, TypeError):
            pass
        name, ident = _e(c.get("name")), _e(c.get("id"))
        out.append(f'<div class="call">tool call <b>{name}</b> <small>{ident}</small>{_pre(args)}</div>')
    return "".join(out)


def _message(m: dict) -> str:
    parts = [f'<div class="msg {_e(m["role"])}"><div class="role">{_e(m["role"])}</div>']
    if m["thinking"]:
        parts.append(_fold("thinking", _pre(m["thinking"])))
    if m["text"]:
        parts.append(_pre(m["text"]))
    for r in m["tool_results"]:
        flag = " (error)" if r["is_error"] else ""
        title = f"tool result {r['id'] or r['name']}{flag} · {len(r['content'])} chars"
        parts.append(_fold(title, _pre(r["content"]), open_=len(r["content"]) < 400))
    parts.append(_calls(m["tool_calls"]))
    parts.append("</div>")
    return "".join(parts)


def _tokens(tokens: dict | None) -> str | None:
    if not tokens:
        return None
    return ", ".join(f"{k.removesuffix('_tokens').replace('_', ' ')} {v:,}" for k, v in tokens.items())


def _route(route: dict | None) -> str | None:
    if not route:
        return None
    text = route["reason"] or "routed"
    if route["backend"]:
        text += f" → {route['backend']}"
    if route["model"]:
        text += f", model {route['model']}"
    if route["fallbacks"]:
        text += f", fallbacks {', '.join(route['fallbacks'])}"
    return text


def _attempts(attempts: list[dict]) -> str:
    attempts = shown_attempts(attempts)
    if not attempts:
        return ""
    rows = "".join(
        f"<tr><td>{_e(a['number'])}</td><td>{_e(a['backend'])}</td><td>{_e(a['model'])}</td>"
        f"<td>{_e(a['upstream_url'])}</td><td>{_e(a['outcome'])}</td><td>{_e(a['decision'])}</td><td>{_e(a['why'])}</td></tr>"
        for a in attempts
    )
    return (
        f"<h3>attempts ({len(attempts)})</h3><table class=\"attempts\"><tr><th>#</th><th>backend</th><th>model</th>"
        f"<th>upstream</th><th>outcome</th><th>decision</th><th>why</th></tr>{rows}</table>"
    )


def _facts(e: dict) -> str:
    requested = e["requested_model"] if e["requested_model"] != e["model"] else None
    rows = [
        ("model", e["model"]), ("requested model", requested), ("backend", e["backend"]), ("route", _route(e["route"])),
        ("protocol", e["protocol"]),
        ("upstream", e["upstream_url"]), ("status", e["status"]),
        ("started", f"{e['started_ms'] / 1000:.3f} s" if e["started_ms"] is not None else None),
        ("latency", f"{e['latency_ms']:.1f} ms" if e["latency_ms"] is not None else None),
        ("first byte", f"{e['ttfb_ms']:.1f} ms" if e["ttfb_ms"] is not None else None),
        ("tokens", _tokens(e["tokens"])),
        ("cost", format_cost(e["cost_usd"]) if e["cost_usd"] is not None else None),
        ("stop", e["stop_reason"]), ("messages", e["messages_total"]),
        ("agent got", "a response that differs from upstream" if e["agent_response_differs"] else None),
    ]
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows if v not in (None, "")) + "</dl>"


def _exchange(e: dict) -> str:
    classes = ["ex"]
    if e["errors"] or (e["status"] or 0) >= 400:
        classes.append("err")
    if not e["complete"]:
        classes.append("open-ended")
    inner = [_facts(e), _attempts(e["attempts"])]
    if e["messages_added"]:
        inner.append(f"<h3>added to the conversation ({len(e['messages_added'])})</h3>")
        inner.extend(_message(m) for m in e["messages_added"])
    if e["thinking"] or e["answer"] or e["tool_calls"]:
        inner.append('<h3>answer</h3><div class="answer">')
        if e["thinking"]:
            inner.append(_fold("thinking", _pre(e["thinking"])))
        if e["answer"]:
            inner.append(_pre(e["answer"]))
        inner.append(_calls(e["tool_calls"]) + "</div>")
    for g in e["guards"]:
        inner.append(f"<div class=\"call\">guard {_pre(json.dumps(g, ensure_ascii=False, default=str))}</div>")
    for err in e["errors"]:
        inner.append(f'<div class="error">{_e(err["kind"])}: {_e(err["message"])}</div>')
    return (
        f'<details class="{" ".join(classes)}" id="x{_e(e["id"])}"><summary>{_e(exchange_line(e))}</summary>'
        f'<div class="inner">{"".join(inner)}</div></details>'
    )


def render_html(doc: dict) -> str:
    """The page for a `to_json` document."""
    lines = run_lines(doc)
    incomplete = not doc["bundle"]["complete"]
    head_lines = [ln for ln in lines[1:] if not ln.startswith("INCOMPLETE")]
    title = lines[0]
    body = [
        f"<header><h1>{_e(title)}</h1>",
        "".join(f"<p>{_e(ln)}</p>" for ln in head_lines),
        f"<p>{_e(doc['bundle']['path'])}</p>",
        '<button type="button" onclick="setAll(true)">Expand all</button>'
        '<button type="button" onclick="setAll(false)">Collapse all</button></header>',
    ]
    if incomplete:
        body.append('<div class="banner"><b>Incomplete</b>: the bundle ends early (agentwrap did not finish the run); '
                    "shown up to where it ends.</div>")
    body.append("<main>")
    body.extend(f'<div class="error">{_e(err["kind"])}: {_e(err["message"])}</div>' for err in doc["errors"])
    body.extend(_exchange(e) for e in doc["exchanges"])
    body.append("</main>")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{_JS}</script>\n</body></html>\n"
    )
