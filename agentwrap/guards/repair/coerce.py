"""Schema-guided coercion of tool arguments: only where the intent is unambiguous.

`coerce(value, schema, root, path, changes)` returns `value` with these
applied where it does not match the schema (parts that match are left
alone; `changes` gets one line per coercion):

- a string that is exactly an integer / number / boolean literal, where the
  schema wants that type and not a string (`"5"` -> 5, `"true"` and
  `"True"` -> true);
- an integer where the schema wants a string only (5 -> "5"); floats and
  booleans are not turned into strings (their spelling is not unique);
- a string holding a JSON object or array where the schema wants one
  (double-encoded parameters: `"todos": "[{...}]"`);
- a single value where the schema wants an array of such values
  (`"paths": "a.txt"` -> `["a.txt"]`);
- an enum string in the wrong case, when exactly one member matches;
- a parameter spelled with other case or separators (`filePath` for
  `file_path`) when the object is invalid without the rename: the declared
  parameter is absent, the key is undeclared, and either extra keys are
  forbidden or the parameter is required;
- null for an optional parameter whose schema does not admit null is
  dropped: models trained on strict function calling write null for
  "absent", and agents that validate with zod reject it. A required
  parameter that is null stays null (and the call fails): a value is never
  invented, and a missing required parameter is never added.

Under anyOf/oneOf the branch needing the fewest coercions is taken; when
several need as few and give different values, nothing is coerced.

Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agentwrap.guards.repair.names import normalize
from agentwrap.guards.repair.validate import properties_of, resolve, schema_types, validate

__all__ = ["coerce", "NUMBER"]

_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc


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
    if "number" in types and NUMBER.fullmatch(value):
        number = float(value) if any(c in value for c in ".eE") else int(value)
        changes.append(f"{where}: {value!r} -> {value} (string as number)")
        return number
    if "boolean" in types and value in ("true", "false", "True", "False"):
        changes.append(f"{where}: {value!r} -> {value.lower()} (string as boolean)")
        return value in ("true", "True")
    if types & {"object", "array"} and value.strip()[:1] in ("{", "["):
        try:
            inner = _loads(value)
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
