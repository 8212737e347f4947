"""The tool-call formats models write into their text, as parsers of whole blocks.

Each parser takes the text of one block the scanner (embedded.py) has cut
out, opening marker included, and returns the calls it holds, or None when
the block is not (entirely) calls of declared tools with arguments that fit
their schemas; a block is extracted whole or not at all. `closed` says
whether the block's closing marker is there (a stream may end without it).

Formats:

- `tool_call`: `<tool_call>{"name": N, "arguments": {...}}</tool_call>`
  (Hermes, Qwen); the inside may also be a `function` block (Qwen3-Coder);
- `function`: `<function=N>{...}</function>` or with
  `<parameter=KEY>value</parameter>` children;
- `function_calls` / `invoke`: `<function_calls><invoke name="N"><parameter
  name="KEY">value</parameter></invoke></function_calls>`;
- `deepseek`: `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>N
  ```json {...}```<｜tool▁call▁end｜><｜tool▁calls▁end｜>`, and V3.1's
  `<｜tool▁call▁begin｜>N<｜tool▁sep｜>{...}<｜tool▁call▁end｜>`;
- GLM-4.5/4.6 in a `tool_call` block: `<tool_call>N<arg_key>KEY</arg_key>
  <arg_value>value</arg_value>...</tool_call>`;
- `kimi`: Kimi K2's `<|tool_calls_section_begin|><|tool_call_begin|>functions.N:0
  <|tool_call_argument_begin|>{...}<|tool_call_end|><|tool_calls_section_end|>`;
- `mistral`: `[TOOL_CALLS][{"name": N, "arguments": {...}}, ...]` and
  `[TOOL_CALLS]N[ARGS]{...}`;
- `xml`: `<N><KEY>value</KEY>...</N>`, N a declared tool;
- `fenced`: a ``` fence holding one `{"name": N, "arguments": {...}}`;
- `bare`: that object alone.

Parameter values in tag formats are raw text (no XML entity decoding): a
single newline right after the opening tag and right before the closing
tag is dropped (Qwen3-Coder puts values on their own lines); a parameter
whose schema does not take a string is read as JSON when it parses. Every
parameter tag must name a parameter of the tool's schema.

Pure: no I/O.
"""

from __future__ import annotations

import re

from agentwrap.guards.repair.arguments import parse_lenient
from agentwrap.guards.repair.toolbox import EmbeddedCall, Toolbox

__all__ = ["EmbeddedCall", "Toolbox", "PARSERS", "DS", "KIMI"]

# DeepSeek's special tokens (U+FF5C FULLWIDTH VERTICAL LINE, U+2581 LOWER ONE EIGHTH BLOCK).
DS = {
    "calls_begin": "<｜tool▁calls▁begin｜>",
    "calls_end": "<｜tool▁calls▁end｜>",
    "call_begin": "<｜tool▁call▁begin｜>",
    "call_end": "<｜tool▁call▁end｜>",
    "sep": "<｜tool▁sep｜>",
}
_DS_ASCII = {v.replace("｜", "|"): v for v in DS.values()}  # the same tokens with an ASCII bar
KIMI = {
    "calls_begin": "<|tool_calls_section_begin|>",
    "calls_end": "<|tool_calls_section_end|>",
    "call_begin": "<|tool_call_begin|>",
    "call_end": "<|tool_call_end|>",
    "args": "<|tool_call_argument_begin|>",
}

_WS = " \t\r\n"
_FUNCTION = re.compile(r"<function=([^>\n]{1,200})>")
_PARAM_NAMED = re.compile(r"<parameter=([^>\n]{1,200})>")
_PARAM_ATTR = re.compile(r"""<parameter\s+name=["']([^"'\n]{1,200})["']\s*>""")
_PARAM_XML = re.compile(r"<([A-Za-z_][A-Za-z0-9_.:-]{0,127})>")
_INVOKE = re.compile(r"""<invoke\s+name=["']([^"'\n]{1,200})["']\s*>""")
_FENCE = re.compile(r"\A[ \t]*(`{3,})[ \t]*([A-Za-z0-9_-]*)[ \t]*\r?\n(.*?)(?:\n[ \t]*\1`*[ \t]*\r?\n?)?\Z", re.S)
_GLM_NAME = re.compile(r"\A([^\s<>]{1,200})\s*")
_GLM_ARG = re.compile(r"\s*<arg_key>(.{1,200}?)</arg_key>\s*<arg_value>(.*?)</arg_value>", re.S)
_KIMI_ID = re.compile(r"\A\s*(?:functions\.)?([^\s:<>]{1,200})(?::\d+)?\s*\Z")
_MISTRAL_ARGS = re.compile(r"\A\s*([^\s\[\]{}]{1,200})(?:\[CALL_ID\][^\[]*)?\[ARGS\](.*)\Z", re.S)
FENCE_INFOS = ("", "json", "tool_call", "tool", "function")


def _value(text: str) -> str:
    if text.startswith("\r\n"):
        text = text[2:]
    elif text.startswith("\n"):
        text = text[1:]
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    return text


def _params(body: str, style: str) -> dict[str, str] | None:
    """Tag-style parameters: whitespace between them, nothing else."""
    pattern = {"named": _PARAM_NAMED, "attr": _PARAM_ATTR, "xml": _PARAM_XML}[style]
    out: dict[str, str] = {}
    pos, end = 0, len(body)
    while True:
        while pos < end and body[pos] in _WS:
            pos += 1
        if pos == end:
            return out
        m = pattern.match(body, pos)
        if m is None:
            return None
        key = m.group(1).strip()
        close = f"</{key}>" if style == "xml" else "</parameter>"
        stop = body.find(close, m.end())
        if stop < 0 or key in out:
            return None
        out[key] = _value(body[m.end() : stop])
        pos = stop + len(close)


def _strip_end(text: str, closer: str, closed: bool) -> str | None:
    """`text` without its closing marker (required when `closed`)."""
    stripped = text.rstrip(_WS)
    if stripped.endswith(closer):
        return stripped[: -len(closer)]
    return None if closed else text


def parse_tool_call(block: str, box: Toolbox, closed: bool) -> list[EmbeddedCall] | None:
    inner = _strip_end(block[len("<tool_call>") :], "</tool_call>", closed)
    if inner is None:
        return None
    inner = inner.strip(_WS)
    if inner.startswith("<function="):
        return parse_function(inner, box, True)
    if inner.startswith("{"):
        call = box.call_object(inner, exact=False)
        return [call] if call else None
    return _glm(inner, box)


def _glm(inner: str, box: Toolbox) -> list[EmbeddedCall] | None:
    """GLM's body: the name, then <arg_key>/<arg_value> pairs (whitespace between)."""
    m = _GLM_NAME.match(inner)
    if m is None:
        return None
    raw: dict[str, str] = {}
    pos = m.end()
    while pos < len(inner):
        pair = _GLM_ARG.match(inner, pos)
        if pair is None or pair.group(1) in raw:
            return None
        raw[pair.group(1).strip()] = pair.group(2)
        pos = pair.end()
        while pos < len(inner) and inner[pos] in _WS:
            pos += 1
    call = box.from_params(m.group(1), raw, exact=False)
    return [call] if call else None


def parse_function(block: str, box: Toolbox, closed: bool) -> list[EmbeddedCall] | None:
    m = _FUNCTION.match(block)
    if m is None:
        return None
    body = _strip_end(block[m.end() :], "</function>", closed)
    if body is None:
        return None
    name = m.group(1).strip()
    if body.strip(_WS).startswith("{"):
        call = box.call(name, body.strip(_WS), exact=False)
    else:
        call = box.from_params(name, _params(body, "named"), exact=False)
    return [call] if call else None


def parse_invoke(block: str, box: Toolbox, closed: bool) -> list[EmbeddedCall] | None:
    m = _INVOKE.match(block)
    if m is None:
        return None
    body = _strip_end(block[m.end() :], "</invoke>", closed)
    call = box.from_params(m.group(1), _params(body, "attr"), exact=False) if body is not None else None
    return [call] if call else None


def parse_function_calls(block: str, box: Toolbox, closed: bool) -> list[EmbeddedCall] | None:
    inner = _strip_end(block[len("<function_calls>") :], "</function_calls>", closed)
    if inner is None:
        return None
    calls: list[EmbeddedCall] = []
    pos = 0
    while True:
        while pos < len(inner) and inner[pos] in _WS:
            pos += 1
        if pos == len(inner):
            return calls or None
        stop = inner.find("</invoke>", pos)
        if stop < 0:
            return None
        found = parse_invoke(inner[pos : stop + len("</invoke>")], box, True)
        if not found:
            return None
        calls += found
        pos = stop + len("</invoke>")


def parse_deepseek(block: str, box: Toolbox, closed: bool) -> list[EmbeddedCall] | None:
    for ascii_token, token in _DS_ASCII.items():
        block = block.replace(ascii_token, token)
    if block.startswith(DS["calls_begin"]):
        inner = _strip_end(block[len(DS["calls_begin"]) :], DS["calls_end"], closed)
    else:
        inner = block
    if inner is None:
        return None
    calls: list[EmbeddedCall] = []
    pos, begin, end = 0, DS["call_begin"], DS["call_end"]
    while True:
        while pos < len(inner) and inner[pos] in _WS:
            pos += 1
        if pos == len(inner):
            return calls or None
        if not inner.startswith(begin, pos):
            return None
        stop = inner.find(end, pos)
        if stop < 0:
            return None
        call = _deepseek_call(inner[pos + len(begin) : stop], box)
        if call is None:
            return None
        calls.append(call)
        pos = stop + len(end)


def _deepseek_call(body: str, box: Toolbox) -> EmbeddedCall | None:
    head, sep, rest = body.partition(DS["sep"])
    if not sep:
        return None
    if head.strip() == "function":  # V3: the type, then the name on its own line, then a fence
        name, newline, rest = rest.partition("\n")
        if not newline:
            return None
    else:  # V3.1: the name, then the arguments
        name = head
    rest = rest.strip(_WS)
    fenced = _FENCE.match(rest)
    if fenced is not None:
        rest = fenced.group(3)
    return box.call(name.strip(), rest.strip(_WS), exact=False)


def parse_kimi(block: str, box: Toolbox, closed: bool) -> list[EmbeddedCall] | None:
    if block.startswith(KIMI["calls_begin"]):
        inner = _strip_end(block[len(KIMI["calls_begin"]) :], KIMI["calls_end"], closed)
    else:
        inner = block
    if inner is None:
        return None
    calls: list[EmbeddedCall] = []
    pos, begin, end = 0, KIMI["call_begin"], KIMI["call_end"]
    while True:
        while pos < len(inner) and inner[pos] in _WS:
            pos += 1
        if pos == len(inner):
            return calls or None
        stop = inner.find(end, pos)
        if not inner.startswith(begin, pos) or stop < 0:
            return None
        call_id, sep, args = inner[pos + len(begin) : stop].partition(KIMI["args"])
        m = _KIMI_ID.match(call_id)
        call = box.call(m.group(1), args.strip(_WS), exact=False) if sep and m else None
        if call is None:
            return None
        calls.append(call)
        pos = stop + len(end)


def parse_mistral(block: str, box: Toolbox, closed: bool) -> list[EmbeddedCall] | None:
    rest = block[len("[TOOL_CALLS]") :].strip(_WS)
    if rest.startswith("["):
        value, error = parse_lenient(rest, [], [])
        if error or not isinstance(value, list) or not value:
            return None
        calls = [box.call_value(item, exact=False) for item in value]
        return calls if all(calls) else None  # type: ignore[return-value]
    out: list[EmbeddedCall] = []
    for part in rest.split("[TOOL_CALLS]"):
        m = _MISTRAL_ARGS.match(part)
        call = box.call(m.group(1), m.group(2).strip(_WS), exact=False) if m else None
        if call is None:
            return None
        out.append(call)
    return out


def parse_xml(block: str, box: Toolbox, closed: bool) -> list[EmbeddedCall] | None:
    m = _PARAM_XML.match(block)
    if m is None or not closed:
        return None
    name = m.group(1)
    body = _strip_end(block[m.end() :], f"</{name}>", True)
    call = box.from_params(name, _params(body, "xml"), exact=True) if body is not None else None
    return [call] if call else None


def parse_fenced(block: str, box: Toolbox, closed: bool) -> list[EmbeddedCall] | None:
    m = _FENCE.match(block)
    if m is None or m.group(2).lower() not in FENCE_INFOS:
        return None
    call = box.call_object(m.group(3).strip(_WS), exact=True)
    return [call] if call else None


def parse_bare(block: str, box: Toolbox, closed: bool) -> list[EmbeddedCall] | None:
    call = box.call_object(block.strip(_WS), exact=True)
    return [call] if call else None


PARSERS = {
    "tool_call": parse_tool_call,
    "function": parse_function,
    "invoke": parse_invoke,
    "function_calls": parse_function_calls,
    "deepseek": parse_deepseek,
    "kimi": parse_kimi,
    "mistral": parse_mistral,
    "xml": parse_xml,
    "fenced": parse_fenced,
    "bare": parse_bare,
}
