"""Tool-call arguments: raw text in, schema-valid JSON text out (or a refusal).

Theory of operation. `repair_arguments(raw, schema)` first tries the cheap
case: strict JSON, an object, valid against the tool's schema -> the same
text comes back, `changed` False. Otherwise, in order:

1. Syntax. A ``` fence around the text is stripped. Text that is still not
   strict JSON goes to `json-repair` (single quotes, trailing commas, raw
   newlines in strings, Python's True/False/None, unquoted keys, missing
   closing brackets), under two safety rules of our own:
   - truncation: closing brackets is only safe when the text stops right
     after a complete value. Text that stops inside a string, after a key
     or a colon, or in the middle of a number or a word is refused: closing
     it would make a different call (`rm -rf /tmp/a` cut to `rm -rf /tmp`);
   - nothing dropped: every word (ASCII letters and digits) of the original
     must survive into the repaired JSON, so leading prose, trailing prose,
     comments and anything else `json-repair` would throw away make the
     repair fail instead.
   NaN and Infinity are not JSON and are refused.
2. Shape. A JSON string holding the object (double-encoded) is decoded; an
   object that is the whole call again (`{"name": <this tool>, "arguments":
   {...}}`) is unwrapped to its arguments.
3. Schema-guided coercion, only where it is unambiguous: see coerce.py.
4. The result must validate, or the repair fails. Repaired text is compact
   JSON with raw UTF-8.

Repair is idempotent: what it returns is valid, so repairing it again
changes nothing. Pure: no I/O. `json-repair` is imported on first need.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from agentwrap.guards.repair.coerce import NUMBER, coerce
from agentwrap.guards.repair.validate import validate

__all__ = ["ArgsResult", "repair_arguments", "parse_lenient", "loads_strict", "dumps_compact", "strip_fence", "truncation", "dropped_words"]

MAX_REPAIR_CHARS = 256 * 1024  # broken arguments longer than this are not repaired (json-repair is pure Python)
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_FENCE = re.compile(r"\A\s*(`{3,}|~{3,})[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)\n?[ \t]*\1[ \t]*\s*\Z", re.S)
_WORD = re.compile(r"[A-Za-z0-9]+")
_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|.)", re.S)
_LITERALS = {"true", "false", "null", "True", "False", "None"}
_DIAGNOSES = (
    ("single_quotes", re.compile(r"(?:^|[{\[,:]\s*)'")),
    ("trailing_comma", re.compile(r",\s*[}\]]")),
    ("python_literals", re.compile(r"(?:[:\[,]\s*)(?:True|False|None)\b")),
    ("raw_newline_in_string", re.compile(r'"[^"\n]*\n[^"]*"')),
    ("unquoted_keys", re.compile(r"[{,]\s*[A-Za-z_][A-Za-z0-9_]*\s*:")),
)


@dataclass(slots=True)
class ArgsResult:
    """The outcome of `repair_arguments`.

    `ok`: `text` is valid JSON that matches the schema. `changed`: `text` differs
    from the input (`changes` says how). When not `ok`, `text` is the input and
    `error` says why it could not be repaired; `problems` lists what was wrong.
    """

    ok: bool
    text: str
    changed: bool = False
    changes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    error: str = ""
    value: Any = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_strict(text: str) -> Any:
    """`json.loads` that refuses NaN and Infinity. Raises ValueError (for nesting too deep
    to parse as well)."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc


def dumps_compact(value: Any) -> str:
    """Compact JSON with raw UTF-8. Raises ValueError for NaN/Infinity."""
    return _encoder.encode(value)


def strip_fence(text: str) -> str | None:
    """The inside of a Markdown code fence that is the whole of `text`, else None."""
    match = _FENCE.match(text)
    if match is None or match.group(2).lower() not in ("", "json", "json5", "javascript", "js"):
        return None
    return match.group(3)


def repair_arguments(raw: str, schema: dict | None, *, tool_name: str = "", empty_ok: bool = True) -> ArgsResult:
    """Make `raw` schema-valid JSON; see the module docstring. Never raises.

    `empty_ok`: empty text stands for `{}` and is left alone (Anthropic and Gemini
    agents read it so); otherwise empty text becomes "{}" when the schema allows it.
    """
    schema = schema if isinstance(schema, dict) else {}
    if not raw.strip():
        error = validate({}, schema)
        if error is not None:
            return ArgsResult(False, raw, problems=["empty arguments"], error=error)
        if empty_ok:
            return ArgsResult(True, raw, value={})
        return ArgsResult(True, "{}", True, ["empty arguments written as {}"], ["empty arguments"], value={})
    try:
        value = loads_strict(raw)
    except ValueError:
        pass
    else:
        if isinstance(value, dict) and validate(value, schema) is None:
            return ArgsResult(True, raw, value=value)
    try:
        return _repair(raw, schema, tool_name)
    except RecursionError:
        return ArgsResult(False, raw, error="arguments nested too deeply")


def _repair(raw: str, schema: dict, tool_name: str) -> ArgsResult:
    problems: list[str] = []
    changes: list[str] = []
    value, error = parse_lenient(raw, problems, changes)
    if error:
        return ArgsResult(False, raw, problems=problems, error=error)
    if isinstance(value, str):
        inner, error = parse_lenient(value, [], [])
        if error or not isinstance(inner, dict):
            return ArgsResult(False, raw, problems=problems + ["arguments are a JSON string"], error="a string that does not hold an object")
        problems.append("double-encoded arguments")
        changes.append("decoded the JSON string holding the arguments")
        value = inner
    if not isinstance(value, dict):
        return ArgsResult(False, raw, problems=problems, error=f"arguments are not an object ({type(value).__name__})")
    mismatch = validate(value, schema)
    if mismatch is not None:
        inner = _envelope(value, tool_name)
        if inner is not None:
            problems.append("the whole call was written as the arguments")
            changes.append("took the arguments out of the call object")
            value = inner
            mismatch = validate(value, schema)
    if mismatch is not None:
        problems.append(mismatch)
    value = coerce(value, schema, schema, "", changes)
    error = validate(value, schema)
    if error is not None:
        if error != mismatch:
            problems.append(error)
        return ArgsResult(False, raw, problems=problems, error=error)
    try:
        text = dumps_compact(value)
    except ValueError as exc:
        return ArgsResult(False, raw, problems=problems, error=str(exc))
    if text == raw:
        return ArgsResult(True, raw, value=value)
    return ArgsResult(True, text, True, changes or ["rewrote the arguments as JSON"], problems, value=value)


def parse_lenient(text: str, problems: list[str], changes: list[str]) -> tuple[Any, str]:
    """(value, "") from possibly broken JSON text, or (None, why not); see the module
    docstring, step 1. `problems` and `changes` get what was wrong and what was done."""
    inside = strip_fence(text)
    if inside is not None:
        problems.append("arguments in a code fence")
        changes.append("removed the code fence")
        text = inside
    try:
        return loads_strict(text), ""
    except ValueError:
        pass
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[\"'":
        return None, "not JSON"
    if len(stripped) > MAX_REPAIR_CHARS:
        return None, f"invalid JSON, too long to repair ({len(stripped)} characters)"
    cut = truncation(stripped)
    if cut:
        problems.append(cut)
        return None, cut
    labels = [name for name, pattern in _DIAGNOSES if pattern.search(stripped)]
    if stripped.count("{") + stripped.count("[") > stripped.count("}") + stripped.count("]"):
        labels.append("unclosed_brackets")
    labels = labels or ["invalid_json"]
    from json_repair import repair_json  # a few ms to import: only when a call is broken

    try:
        value = repair_json(stripped, return_objects=True, skip_json_loads=True)
        text_out = dumps_compact(value)
    except (ValueError, RecursionError, TypeError) as exc:
        return None, f"invalid JSON ({exc})"
    lost = dropped_words(stripped, text_out)
    if lost:
        problems.extend(labels)
        return None, f"repairing would drop {', '.join(sorted(lost)[:5])}"
    problems.extend(labels)
    changes.append("fixed the JSON syntax (" + ", ".join(labels) + ")")
    return value, ""


def dropped_words(original: str, repaired: str) -> set[str]:
    """Words (ASCII letters and digits, case-folded) of `original` missing from `repaired`."""
    before = Counter(_words(original))
    before.subtract(_words(repaired))
    return {word for word, count in before.items() if count > 0}


def _words(text: str) -> list[str]:
    words = _WORD.findall(_ESCAPE.sub(" ", text).lower())
    return ["null" if w == "none" else w for w in words]


def truncation(text: str) -> str:
    """Why closing the open brackets of `text` would change the call ("" if it is safe).

    A lenient scan: double- and single-quoted strings, brackets, and what the
    last token was. Only text that ends with brackets still open, or inside
    a string, is judged.
    """
    stack: list[str] = []
    quote = ""
    escape = False
    last = ""  # open, close, colon, comma, key, value, word
    word = last_word = ""
    for ch in text:
        if quote:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == quote:
                quote = ""
                last = "key" if stack and stack[-1] == "{" and last in ("open", "comma") else "value"
            continue
        if ch.isalnum() or ch in "._+-":
            word += ch
            last = "word"
            continue
        if word:
            last_word, word = word, ""
        if ch == '"' or (ch == "'" and last in ("", "open", "comma", "colon")):
            quote = ch
        elif ch in "{[":
            stack.append(ch)
            last = "open"
        elif ch in "}]":
            if stack:
                stack.pop()
            last = "close"
        elif ch == ":":
            last = "colon"
        elif ch == ",":
            last = "comma"
    if quote:
        return "truncated inside a string"
    if not stack:
        return ""
    if last in ("colon", "key"):
        return "truncated after a key"
    if last == "word":
        final = word or last_word
        if final in _LITERALS:
            return ""
        return "truncated inside a number" if NUMBER.fullmatch(final) else "truncated inside a value"
    return ""


def _envelope(value: dict, tool_name: str) -> dict | None:
    """The arguments of a whole call object written as the arguments, else None."""
    if not tool_name or value.get("name") != tool_name:
        return None
    keys = [k for k in value if k not in ("name", "type", "id")]
    if len(keys) != 1 or keys[0] not in ("arguments", "parameters", "args", "input"):
        return None
    inner = value[keys[0]]
    if isinstance(inner, str):
        try:
            inner = loads_strict(inner)
        except ValueError:
            return None
    return inner if isinstance(inner, dict) else None
