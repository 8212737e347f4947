"""A small JSON-schema validator for the subset tool declarations use.

Tool schemas are JSON Schema, mostly draft 7 / 2020-12 as the agents write
them, sometimes OpenAPI 3 as Gemini takes them (`nullable`, upper-case
type names). Supported: `type` (a name or a list), `enum`, `const`,
`properties`, `required`, `additionalProperties` (false or a schema),
`items` (one schema), `anyOf` / `oneOf` (both as "at least one branch":
overlapping branches are common and rejecting them would only make the
guard stricter than the agent), `allOf`, `nullable`, and local `$ref`s
(`#/$defs/...`, `#/definitions/...`). Every other keyword is ignored.

The validator is deliberately permissive where it is unsure: it decides
whether the repair guard needs to touch a call at all, and a guard stricter
than the agent would change calls the agent accepts. An integral float
(`5.0`) is an integer, as JSON Schema draft 6 and later say; a boolean is
never a number.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

__all__ = ["validate", "is_valid", "schema_types", "resolve", "properties_of"]

_MAX_DEPTH = 64  # nesting (values and $refs) past which a value is taken as valid


def schema_types(schema: Any) -> set[str] | None:
    """The JSON types `schema` names (lower-cased, `nullable` adds "null"); None if it names none."""
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if isinstance(kind, str):
        types = {kind.lower()}
    elif isinstance(kind, list):
        types = {k.lower() for k in kind if isinstance(k, str)}
    else:
        return None
    if schema.get("nullable") is True:
        types.add("null")
    return types


def resolve(schema: Any, root: Any, depth: int = 0) -> Any:
    """`schema` with a local `$ref` followed (a few levels); an unknown ref is "anything" ({})."""
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and depth < 8:
        ref = schema["$ref"]
        if not ref.startswith("#"):
            return {}
        target: Any = root
        for part in ref[1:].split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            return {}
        schema = target
        depth += 1
    return schema


def properties_of(schema: Any) -> dict:
    """The `properties` of an object schema ({} if none)."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    return props if isinstance(props, dict) else {}


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "null":
        return value is None
    return True  # a type name we do not know: permissive


def validate(value: Any, schema: Any, root: Any = None, path: str = "", depth: int = 0) -> str | None:
    """The first reason `value` does not match `schema` ("" path is the top), or None if it does."""
    if root is None:
        root = schema
    if depth > _MAX_DEPTH:
        return None
    schema = resolve(schema, root)
    if schema is True or not isinstance(schema, dict) or not schema:
        return None if schema is not False else f"{path or 'value'}: not allowed"
    where = path or "arguments"
    types = schema_types(schema)
    if types is not None and types and not any(_type_ok(value, t) for t in types):
        return f"{where}: expected {'/'.join(sorted(types))}, got {_json_type(value)}"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and not any(_same(value, e) for e in enum):
        return f"{where}: {_short(value)} is not one of {_short(enum)}"
    if "const" in schema and not _same(value, schema["const"]):
        return f"{where}: must be {_short(schema['const'])}"
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            if all(validate(value, b, root, path, depth + 1) is not None for b in branches):
                return f"{where}: matches none of {key}"
    branches = schema.get("allOf")
    if isinstance(branches, list):
        for branch in branches:
            error = validate(value, branch, root, path, depth + 1)
            if error is not None:
                return error
    if isinstance(value, dict):
        return _object(value, schema, root, path, depth)
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, (dict, bool)):
            for n, item in enumerate(value):
                error = validate(item, items, root, f"{path}[{n}]", depth + 1)
                if error is not None:
                    return error
    return None


def _object(value: dict, schema: dict, root: Any, path: str, depth: int) -> str | None:
    required = schema.get("required")
    if isinstance(required, list):
        for key in required:
            if isinstance(key, str) and key not in value:
                return f"{path + '.' if path else ''}{key}: required"
    props = properties_of(schema)
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        sub = f"{path}.{key}" if path else key
        if key in props:
            error = validate(item, props[key], root, sub, depth + 1)
        elif extra is False:
            error = f"{sub}: not a declared parameter"
        elif isinstance(extra, dict):
            error = validate(item, extra, root, sub, depth + 1)
        else:
            error = None
        if error is not None:
            return error
    return None


def is_valid(value: Any, schema: Any, root: Any = None) -> bool:
    return validate(value, schema, root) is None


def _same(a: Any, b: Any) -> bool:
    # JSON equality: 1 == 1.0, but true is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
