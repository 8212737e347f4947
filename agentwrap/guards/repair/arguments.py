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
3. Schema-guided coercion, only where it is unambiguous (`coerce`):
   - a string that is exactly an integer / number / boolean literal, where
     the schema wants that type and not a string (`"5"` -> 5, `"true"` and
     `"True"` -> true);
   - an integer where the schema wants a string only (5 -> "5"); floats and
     booleans are not turned into strings (their spelling is not unique);
   - a string holding a JSON object or array where the schema wants one
     (double-encoded parameters: `"todos": "[{...}]"`);
   - a single value where the schema wants an array of such values
     (`"paths": "a.txt"` -> `["a.txt"]`);
   - an enum string in the wrong case, when exactly one member matches;
   - a parameter spelled with other case or separators (`filePath` for
     `file_path`) when the object is invalid without the rename: the
     declared parameter is absent, and the key is undeclared, and either
     extra keys are forbidden or the parameter is required;
   - null for an optional parameter whose schema does not admit null is
     dropped: models trained on strict function calling write null for
     "absent", and agents that validate with zod reject it. A required
     parameter that is null stays null (and the call fails): a value is
     never invented, and a missing required parameter is never added.
   Under anyOf/oneOf the branch needing the fewest coercions is taken; when
   several need as few and give different values, nothing is coerced.
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

from agentwrap.guards.repair.names import normalize
from agentwrap.guards.repair.validate import properties_of, resolve, schema_types, validate

__all__ = ["ArgsResult", "repair_arguments", "coerce", "parse_lenient", "loads_strict", "dumps_compact", "strip_fence", "truncation", "dropped_words"]

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_FENCE = re.compile(r"\A\s*(`{3,}|~{3,})[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)\n?[ \t]*\1[ \t]*\Z", re.S)
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
    """`json.loads` that refuses NaN and Infinity. Raises ValueError."""
    return json.loads(text, parse_constant=_reject_constant)


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
        return "truncated inside a number" if _NUMBER.fullmatch(final) else "truncated inside a value"
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


# -- schema-guided coercion ------------------------------------------------------


def coerce(value: Any, schema: Any, root: Any, path: str, changes: list[str], depth: int = 0) -> Any:
    """`value` with the unambiguous coercions of the module docstring applied where it does
    not match `schema`; `changes` gets a line per coercion. Parts that match stay as they are."""
    schema = resolve(schema, root)
    if depth > 32 or not isinstance(schema, dict) or not schema or validate(value, schema, root) is None:
        return value
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            return _branches(value, schema, branches, root, path, changes, depth)
    where = path or "arguments"
    types = schema_types(schema) or _implied_types(schema)
    if isinstance(value, str):
        if "string" not in types:
            out = _from_string(value, schema, types, root, path, changes, depth)
            if out is not _NO:
                return out
        if isinstance(schema.get("enum"), list):
            matches = [e for e in schema["enum"] if isinstance(e, str) and e.lower() == value.lower()]
            if len(matches) == 1:
                changes.append(f"{where}: {value!r} -> {matches[0]!r} (enum case)")
                return matches[0]
    elif isinstance(value, int) and not isinstance(value, bool) and types == {"string"}:
        changes.append(f"{where}: {value} -> {str(value)!r} (integer as string)")
        return str(value)
    if isinstance(value, dict) and ("object" in types or not types):
        return _object(value, schema, root, path, changes, depth)
    if isinstance(value, list) and "array" in types:
        items = schema.get("items")
        if isinstance(items, dict):
            return [coerce(item, items, root, f"{path}[{n}]", changes, depth + 1) for n, item in enumerate(value)]
        return value
    if "array" in types and not isinstance(value, list) and value is not None:
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        trial: list[str] = []
        item = coerce(value, items, root, f"{path}[0]", trial, depth + 1)
        if validate(item, items, root) is None and validate([item], schema, root) is None:
            changes.extend(trial)
            changes.append(f"{where}: single value -> one-element array")
            return [item]
    return value


_NO = object()


def _implied_types(schema: dict) -> set[str]:
    if "properties" in schema or "required" in schema:
        return {"object"}
    if "items" in schema:
        return {"array"}
    return set()


def _from_string(value: str, schema: dict, types: set[str], root: Any, path: str, changes: list[str], depth: int) -> Any:
    where = path or "arguments"
    if "integer" in types and _INT.fullmatch(value):
        changes.append(f"{where}: {value!r} -> {value} (string as integer)")
        return int(value)
    if "number" in types and _NUMBER.fullmatch(value):
        number = float(value) if any(c in value for c in ".eE") else int(value)
        changes.append(f"{where}: {value!r} -> {value} (string as number)")
        return number
    if "boolean" in types and value in ("true", "false", "True", "False"):
        changes.append(f"{where}: {value!r} -> {value.lower()} (string as boolean)")
        return value in ("true", "True")
    if types & {"object", "array"} and value.strip()[:1] in ("{", "["):
        try:
            inner = loads_strict(value)
        except ValueError:
            inner = _NO
        if (isinstance(inner, dict) and "object" in types) or (isinstance(inner, list) and "array" in types):
            changes.append(f"{where}: decoded the JSON string holding the {'object' if isinstance(inner, dict) else 'array'}")
            return coerce(inner, schema, root, path, changes, depth + 1)
    return _NO


def _object(value: dict, schema: dict, root: Any, path: str, changes: list[str], depth: int) -> dict:
    props = properties_of(schema)
    required = {k for k in schema.get("required", ()) if isinstance(k, str)} if isinstance(schema.get("required"), list) else set()
    closed = schema.get("additionalProperties") is False
    out = dict(value)
    if props:
        for key in [k for k in out if k not in props]:
            target = _rename_target(key, props, out)
            if target is not None and (closed or target in required):
                changes.append(f"{path + '.' if path else ''}{key} -> {target} (parameter name)")
                out = {target if k == key else k: v for k, v in out.items()}
    for key in list(out):
        sub = f"{path}.{key}" if path else key
        if key in props:
            prop = resolve(props[key], root)
            if out[key] is None and key not in required and validate(None, prop, root) is not None:
                changes.append(f"{sub}: dropped null (optional parameter)")
                del out[key]
                continue
            out[key] = coerce(out[key], prop, root, sub, changes, depth + 1)
        elif isinstance(schema.get("additionalProperties"), dict):
            out[key] = coerce(out[key], schema["additionalProperties"], root, sub, changes, depth + 1)
    return out


def _rename_target(key: str, props: dict, present: dict) -> str | None:
    norm = normalize(key)
    matches = [p for p in props if p not in present and normalize(p) == norm]
    return matches[0] if len(matches) == 1 else None


def _branches(value: Any, schema: dict, branches: list, root: Any, path: str, changes: list[str], depth: int) -> Any:
    """Coerce into the branch that needs the fewest coercions; when several branches need
    as few and give different values, the value is ambiguous and stays as it is."""
    results: list[tuple[int, Any, list[str]]] = []
    for branch in branches:
        trial: list[str] = []
        out = coerce(value, branch, root, path, trial, depth + 1)
        if validate(out, schema, root) is None:
            results.append((len(trial), out, trial))
    if not results:
        return value
    fewest = min(r[0] for r in results)
    best = [r for r in results if r[0] == fewest]
    if all(_equal(r[1], best[0][1]) for r in best):
        changes.extend(best[0][2])
        return best[0][1]
    return value


def _equal(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b
