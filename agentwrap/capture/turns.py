"""Read the conversation out of a recorded request: who said what, tool calls and results.

Sans-IO and lenient: unknown shapes give an entry with what could be read.
Each conversation element becomes one entry:
`{"role", "text", "thinking", "tool_calls": [{"id", "name", "arguments"}],
"tool_results": [{"id", "name", "content", "is_error"}]}`.
"""

from __future__ import annotations

import json
from typing import Any

from agentwrap.protocols._lenient import as_dict, as_list, as_text

__all__ = ["conversation", "describe", "first_new", "previous_turn", "system_prompt", "tool_names"]

LOOKBACK = 16  # earlier requests compared when finding what a request adds
_CONVERSATION_KEY = {
    "anthropic_messages": "messages", "openai_chat": "messages", "openai_responses": "input", "gemini": "contents",
}


def _dumps(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


def conversation(protocol: str | None, body: Any) -> list | None:
    """The conversation array of a request body, or None if it has none."""
    if not isinstance(body, dict):
        return None
    if protocol == "gemini" and isinstance(body.get("request"), dict) and "contents" in body["request"]:
        body = body["request"]  # Code Assist wrapping
    key = _CONVERSATION_KEY.get(protocol or "")
    value = body.get(key) if key else None
    if protocol == "openai_responses" and isinstance(value, str):
        return [{"role": "user", "content": value}]
    return value if isinstance(value, list) else None


def _text_parts(content: Any) -> str:
    """Text of a content value: a string or a list of typed parts (text or media)."""
    if isinstance(content, str):
        return content
    out: list[str] = []
    for part in as_list(content):
        part = as_dict(part)
        kind = as_text(part.get("type"))
        if isinstance(part.get("text"), str):
            out.append(part["text"])
        elif kind:
            out.append(f"[{kind}]")
    return "\n".join(out)


def _call(ident: Any, name: Any, arguments: Any) -> dict:
    return {"id": as_text(ident), "name": as_text(name), "arguments": arguments if isinstance(arguments, str) else _dumps(arguments)}


def _result(ident: Any, name: Any, content: str, is_error: bool) -> dict:
    return {"id": as_text(ident), "name": as_text(name), "content": content, "is_error": is_error}


def _entry(role: str) -> dict:
    return {"role": role, "text": "", "thinking": "", "tool_calls": [], "tool_results": []}


def _append(entry: dict, key: str, text: str) -> None:
    if text:
        entry[key] = f"{entry[key]}\n{text}" if entry[key] else text


def describe(protocol: str | None, element: Any) -> dict:
    """One conversation element as a display entry."""
    el = as_dict(element)
    if protocol == "anthropic_messages":
        return _anthropic(el)
    if protocol == "openai_chat":
        return _chat(el)
    if protocol == "openai_responses":
        return _responses(el)
    if protocol == "gemini":
        return _gemini(el)
    entry = _entry(as_text(el.get("role")) or "?")
    entry["text"] = _dumps(element)
    return entry


def _anthropic(el: dict) -> dict:
    entry = _entry(as_text(el.get("role")) or "?")
    content = el.get("content")
    if isinstance(content, str):
        entry["text"] = content
        return entry
    for block in as_list(content):
        block = as_dict(block)
        kind = block.get("type")
        if kind == "text":
            _append(entry, "text", as_text(block.get("text")))
        elif kind == "thinking":
            _append(entry, "thinking", as_text(block.get("thinking")))
        elif kind in ("tool_use", "server_tool_use"):
            entry["tool_calls"].append(_call(block.get("id"), block.get("name"), block.get("input", {})))
        elif kind == "tool_result":
            content = _text_parts(block.get("content"))
            entry["tool_results"].append(_result(block.get("tool_use_id"), "", content, bool(block.get("is_error"))))
        elif kind:
            _append(entry, "text", f"[{kind}]")
    return entry


def _chat(el: dict) -> dict:
    role = as_text(el.get("role")) or "?"
    entry = _entry(role)
    text = _text_parts(el.get("content"))
    if role == "tool":
        entry["tool_results"].append(_result(el.get("tool_call_id"), el.get("name"), text, False))
        return entry
    entry["text"] = text
    entry["thinking"] = as_text(el.get("reasoning_content"))
    for tc in as_list(el.get("tool_calls")):
        tc = as_dict(tc)
        fn = as_dict(tc.get("function")) or as_dict(tc.get("custom"))
        args = fn.get("arguments", fn.get("input", ""))
        entry["tool_calls"].append(_call(tc.get("id"), fn.get("name"), args))
    return entry


def _responses(el: dict) -> dict:
    kind = as_text(el.get("type")) or "message"
    if kind == "message":
        entry = _entry(as_text(el.get("role")) or "?")
        entry["text"] = _text_parts(el.get("content"))
        return entry
    if kind == "reasoning":
        entry = _entry("assistant")
        entry["thinking"] = "\n".join(as_text(as_dict(s).get("text")) for s in as_list(el.get("summary")))
        return entry
    if kind.endswith("_call_output"):
        entry = _entry("tool")
        out = el.get("output")
        content = out if isinstance(out, str) else _text_parts(out) if isinstance(out, list) else _dumps(out)
        entry["tool_results"].append(_result(el.get("call_id"), "", content, False))
        return entry
    if kind.endswith("_call"):
        entry = _entry("assistant")
        args = el["arguments"] if "arguments" in el else el.get("input", el.get("action", ""))
        entry["tool_calls"].append(_call(el.get("call_id") or el.get("id"), el.get("name") or kind, args))
        return entry
    entry = _entry(as_text(el.get("role")) or kind)
    entry["text"] = f"[{kind}]"
    return entry


def _gemini(el: dict) -> dict:
    role = as_text(el.get("role")) or "?"
    entry = _entry("assistant" if role == "model" else role)
    for part in as_list(el.get("parts")):
        part = as_dict(part)
        if isinstance(part.get("text"), str):
            _append(entry, "thinking" if part.get("thought") else "text", part["text"])
        elif isinstance(part.get("functionCall"), dict):
            fc = part["functionCall"]
            entry["tool_calls"].append(_call(fc.get("id"), fc.get("name"), fc.get("args", {})))
        elif isinstance(part.get("functionResponse"), dict):
            fr = part["functionResponse"]
            resp = fr.get("response")
            content = as_text(as_dict(resp).get("output")) or _dumps(resp)
            entry["tool_results"].append(_result(fr.get("id"), fr.get("name"), content, "error" in as_dict(resp)))
        elif part:
            _append(entry, "text", f"[{next(iter(part))}]")
    return entry


def _strip_cache_marks(v: Any) -> Any:
    # Claude Code moves `cache_control` to the newest message every turn; the
    # message is the same one for the reader.
    if isinstance(v, dict):
        return {k: _strip_cache_marks(x) for k, x in v.items() if k != "cache_control"}
    if isinstance(v, list):
        return [_strip_cache_marks(x) for x in v]
    return v


def _same(a: Any, b: Any, protocol: str | None = None) -> bool:
    if a is b or a == b or _strip_cache_marks(a) == _strip_cache_marks(b):
        return True
    # The same message in another form (Claude Code sends a text block list one turn
    # and the plain string the next): the same for the reader.
    return protocol is not None and describe(protocol, a) == describe(protocol, b)


def previous_turn(conv: list, earlier: list[list], protocol: str | None = None) -> tuple[int | None, int]:
    """`(index in earlier, shared elements)` of the recent earlier conversation that shares the
    longest prefix with `conv` (its previous turn); `(None, 0)` for a new conversation.

    Only the last `LOOKBACK` conversations are compared. With `protocol`, elements that read
    the same (`describe`) count as the same.
    """
    best, best_at = 0, None
    start = max(0, len(earlier) - LOOKBACK)
    for at in range(len(earlier) - 1, start - 1, -1):  # newest first: a tie goes to the latest turn
        prev = earlier[at]
        n = 0
        limit = min(len(prev), len(conv))
        while n < limit and _same(conv[n], prev[n], protocol):
            n += 1
        if n > best:
            best, best_at = n, at
            if best == len(conv):
                break
    return best_at, best


def first_new(conv: list, earlier: list[list], protocol: str | None = None) -> int:
    """Index of the first element of `conv` that none of the recent `earlier` conversations had.

    The earlier conversation sharing the longest prefix with `conv` is taken as
    its previous turn; 0 when there is none (a new conversation).
    """
    return previous_turn(conv, earlier, protocol)[1]


def system_prompt(protocol: str | None, body: Any) -> str:
    """The system prompt (instructions) a request carries outside its conversation, as text."""
    if not isinstance(body, dict):
        return ""
    if protocol == "anthropic_messages":
        return _text_parts(body.get("system"))
    if protocol == "openai_responses":
        return as_text(body.get("instructions"))
    if protocol == "gemini":
        if isinstance(body.get("request"), dict):
            body = body["request"]  # Code Assist wrapping
        inst = body.get("systemInstruction", body.get("system_instruction"))
        return _text_parts(as_dict(inst).get("parts")) if isinstance(inst, dict) else as_text(inst)
    return ""  # Chat sends it as a conversation element


def tool_names(protocol: str | None, body: Any) -> list[str]:
    """The names of the tools a request declares, in order."""
    if not isinstance(body, dict):
        return []
    if protocol == "gemini" and isinstance(body.get("request"), dict):
        body = body["request"]
    names: list[str] = []
    for tool in as_list(body.get("tools")):
        tool = as_dict(tool)
        declarations = tool.get("functionDeclarations", tool.get("function_declarations"))
        if isinstance(declarations, list):
            names.extend(as_text(as_dict(d).get("name")) for d in declarations)
        else:
            fn = as_dict(tool.get("function"))
            names.append(as_text(tool.get("name")) or as_text(fn.get("name")) or as_text(tool.get("type")) or "?")
    return names
