"""JSON-schema cleaning for backends that reject keywords.

`clean_schema(schema, target)` returns a copy a `target` backend accepts,
keeping the meaning where the target can express it and moving what it
cannot into the description, so the model still reads the constraint.
`tool_parameters(schema, target)` also makes the top level an object.

Why each rule exists is said where it is applied. Sans-IO, pure.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["clean_schema", "tool_parameters"]

# Keys of Gemini's `Schema` object (generativelanguage v1beta, 2025): it is an
# OpenAPI 3.0 subset and rejects any other key with 400 "Unknown name".
_GEMINI_KEYS = {
    "type", "format", "title", "description", "nullable", "enum", "items", "properties", "required",
    "minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength", "pattern",
    "minimum", "maximum", "anyOf", "default", "example", "propertyOrdering",
}  # fmt: skip
# Gemini accepts `format` only with these types; others (uri, email, uuid...) fail.
_GEMINI_FORMATS = {"string": {"enum", "date-time"}, "number": {"float", "double"}, "integer": {"int32", "int64"}}
# Anthropic structured outputs (output_config.format, 2025-11) reject these
# constraints; the SDK's own helper moves them into the description as well.
_ANTHROPIC_STRICT_DROP = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "maxItems", "minProperties", "maxProperties")
_MAX_REF_DEPTH = 4  # $ref inlining stops here: Gemini has no recursion


def clean_schema(schema: Any, target: str, *, strict: bool = False) -> dict:
    """A copy of `schema` that the `target` protocol's backend accepts.

    `strict` asks for Anthropic's structured-output subset (every object
    closed, numeric and length constraints only described). Never raises.
    """
    if not isinstance(schema, dict):
        return {}
    defs: dict = {}
    for key in ("$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            defs.update({f"#/{key}/{name}": value for name, value in schema[key].items()})
    return _Cleaner(target, strict, defs).walk(schema, 0)


def tool_parameters(schema: Any, target: str) -> dict:
    """Tool parameters for `target`: an object schema with `properties`.

    OpenAI rejects function parameters without "type": "object"; Anthropic
    requires input_schema to be an object schema.
    """
    cleaned = clean_schema(schema, target)
    if cleaned.get("type") != "object":
        cleaned = {"type": "object", "properties": {}} if not cleaned else {"type": "object", "properties": {"value": cleaned}}
    if target != "gemini":
        cleaned.setdefault("properties", {})
    return cleaned


_GEMINI_TYPES = {"string", "number", "integer", "boolean", "array", "object"}


def _gemini_value(key: str, value: Any) -> bool:
    if key == "type":
        return value in _GEMINI_TYPES
    if key in ("properties", "items"):
        return isinstance(value, dict)
    if key == "anyOf":
        return isinstance(value, list) and bool(value)
    if key in ("required", "enum", "propertyOrdering"):
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if key == "nullable":
        return isinstance(value, bool)
    if key in ("description", "title", "format", "pattern"):
        return isinstance(value, str)
    if key in ("example", "default"):
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool)  # the numeric bounds


def _note(node: dict, text: str) -> None:
    described = node.get("description")
    node["description"] = f"{described} ({text})" if isinstance(described, str) and described else f"({text})"


def _lower_type(value: Any) -> Any:
    # Gemini CLI (0.61) writes OpenAPI-style upper-case types ("OBJECT") even
    # in responseJsonSchema; JSON Schema and OpenAI want lower case.
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, list):
        return [v.lower() if isinstance(v, str) else v for v in value]
    return value


class _Cleaner:
    def __init__(self, target: str, strict: bool, defs: dict) -> None:
        self.gemini = target == "gemini"
        self.strict = strict and target == "anthropic_messages"
        self.defs = defs

    def walk(self, node: Any, depth: int) -> dict:
        if not isinstance(node, dict):
            return {}
        node = dict(node)
        if "type" in node:
            node["type"] = _lower_type(node["type"])
        if not self.gemini:
            # "$schema" means nothing to a tool call, and some OpenAI-compatible
            # servers (Gemini's, vLLM's guided decoding) refuse it.
            node.pop("$schema", None)
            return self._json_schema(node, depth)
        ref = node.pop("$ref", None)
        if isinstance(ref, str):
            node = self._inline(ref, node, depth)
            depth += 1
            if "type" in node:
                node["type"] = _lower_type(node["type"])
        return self._gemini(node, depth)

    def _inline(self, ref: str, node: dict, depth: int) -> dict:
        # Gemini has no $ref; inlining keeps the meaning. Recursive schemas
        # cannot be inlined fully, so the cycle is cut at a fixed depth.
        target = self.defs.get(ref)
        if not isinstance(target, dict) or depth >= _MAX_REF_DEPTH:
            stub: dict[str, Any] = {"type": "object"}
            _note(stub, f"recursive structure {ref.rsplit('/', 1)[-1]}" if isinstance(target, dict) else f"see {ref}")
            return stub
        merged = dict(target)
        merged.update({k: v for k, v in node.items() if k != "$ref"})
        return merged

    # -- JSON Schema targets (Anthropic, OpenAI) -----------------------------------

    def _json_schema(self, node: dict, depth: int) -> dict:
        if node.pop("nullable", False) is True and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]  # OpenAPI's nullable, in JSON Schema terms
        node.pop("propertyOrdering", None)  # Gemini-only keyword
        if "example" in node:
            node.setdefault("examples", [node.pop("example")])
        for key in ("$defs", "definitions"):
            if isinstance(node.get(key), dict):  # local refs stay: both accept them
                node[key] = {name: self.walk(sub, depth) for name, sub in node[key].items()}
        if self.strict:
            for key in _ANTHROPIC_STRICT_DROP:
                if key in node:
                    _note(node, f"{key}: {json.dumps(node.pop(key))}")
            if isinstance(node.get("minItems"), int) and node["minItems"] > 1:
                _note(node, f"minItems: {node.pop('minItems')}")
        self._children(node, depth)
        if self.strict and (node.get("type") == "object" or "properties" in node):
            node["additionalProperties"] = False  # required by Anthropic structured outputs
        return node

    def _children(self, node: dict, depth: int) -> None:
        props = node.get("properties")
        if isinstance(props, dict):
            node["properties"] = {name: self.walk(sub, depth) for name, sub in props.items()}
        elif "properties" in node:
            del node["properties"]
        items = node.get("items")
        if isinstance(items, dict):
            node["items"] = self.walk(items, depth)
        elif isinstance(items, list):  # draft-4 tuple form
            node["items"] = [self.walk(i, depth) for i in items]
        for key in ("anyOf", "oneOf", "allOf"):
            if isinstance(node.get(key), list):
                node[key] = [self.walk(s, depth) for s in node[key] if isinstance(s, dict)]
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            node["additionalProperties"] = self.walk(extra, depth)

    # -- Gemini ------------------------------------------------------------------

    def _gemini(self, node: dict, depth: int) -> dict:
        # oneOf has no Gemini form; anyOf is the closest (one-of-several vs any).
        if "oneOf" in node and "anyOf" not in node:
            node["anyOf"] = node.pop("oneOf")
        if isinstance(node.get("allOf"), list):
            node = self._merge_all_of(node)
        if "const" in node:
            # const -> an enum of one, which Gemini supports for strings only.
            const = node.pop("const")
            if isinstance(const, str):
                node["enum"] = [const]
                node.setdefault("type", "string")
            else:
                _note(node, f"must be {json.dumps(const)}")
        self._gemini_types(node, depth)
        if "enum" in node:
            values = node["enum"]
            if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
                node["type"] = "string"  # Gemini enums are typed STRING
            else:
                del node["enum"]
                if isinstance(values, list) and values:
                    _note(node, "one of: " + ", ".join(json.dumps(v) for v in values))
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            # Draft 6 numbers become inclusive bounds plus a note; the draft-4
            # boolean form only qualifies minimum/maximum, which stay.
            value = node.pop(key, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                node["minimum" if key == "exclusiveMinimum" else "maximum"] = value
                _note(node, f"{'greater' if key == 'exclusiveMinimum' else 'less'} than {value}")
        fmt = node.get("format")
        if fmt is not None and (not isinstance(fmt, str) or fmt not in _GEMINI_FORMATS.get(node.get("type"), ())):
            del node["format"]
            if isinstance(fmt, str):
                _note(node, f"format: {fmt}")
        if "examples" in node:
            examples = node.pop("examples")
            if isinstance(examples, list) and examples:
                node.setdefault("example", examples[0])
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and not node.get("properties"):
            _note(node, "an object with arbitrary keys")  # a map: Gemini cannot say so
        if isinstance(node.get("anyOf"), list):
            # A null branch is Gemini's `nullable` on the node itself.
            branches = [b for b in node["anyOf"] if isinstance(b, dict)]
            kept = [b for b in branches if _lower_type(b.get("type")) != "null"]
            if len(kept) < len(branches):
                node["nullable"] = True
            node["anyOf"] = kept
        self._children(node, depth)
        props = node.get("properties")
        if isinstance(props, dict) and not props:
            del node["properties"]  # Gemini: "properties: should be non-empty for OBJECT type"
        required = node.get("required")
        if required is not None:
            names = node.get("properties") or {}
            kept = [r for r in required if isinstance(r, str) and r in names] if isinstance(required, list) else []
            # Gemini rejects required names that are not properties.
            if kept:
                node["required"] = kept
            else:
                del node["required"]
        if node.get("type") == "array" and not isinstance(node.get("items"), dict):
            # Gemini requires `items` on arrays ("items: missing field").
            node["items"] = {"type": "string"}
            _note(node, "items of any type")
        if isinstance(node.get("anyOf"), list):
            branches = [b for b in node["anyOf"] if b]
            if len(branches) == 1 and not any(k in node for k in ("type", "properties")):
                node.pop("anyOf")
                node.update({k: v for k, v in branches[0].items() if k not in node or k == "description"})
            elif branches:
                node["anyOf"] = branches
            else:
                del node["anyOf"]
        # Everything else (additionalProperties, propertyNames, patternProperties,
        # if/then/else, not, uniqueItems, multipleOf, readOnly, custom keys such
        # as Codex's "encrypted") is unknown to Gemini's Schema: drop it, and
        # known keys whose value has the wrong JSON type too.
        return {k: v for k, v in node.items() if k in _GEMINI_KEYS and _gemini_value(k, v)}

    def _gemini_types(self, node: dict, depth: int) -> None:
        kind = node.get("type")
        if isinstance(kind, list):
            # Type arrays are JSON Schema; Gemini has `nullable` and anyOf.
            kinds = [k for k in kind if isinstance(k, str)]
            if "null" in kinds:
                node["nullable"] = True
                kinds = [k for k in kinds if k != "null"]
            if len(kinds) == 1:
                node["type"] = kinds[0]
            else:
                del node["type"]
                if kinds:
                    node["anyOf"] = [{"type": k} for k in kinds]
        elif kind == "null":
            node["type"] = "string"
            node["nullable"] = True
            _note(node, "always null")
        elif kind is not None and not isinstance(kind, str):
            del node["type"]

    def _merge_all_of(self, node: dict) -> dict:
        # allOf of object schemas merges into one object (properties and
        # required are unions); other parts keep only their descriptions.
        parts = [p for p in node.pop("allOf") if isinstance(p, dict)]
        merged = dict(node)
        for part in parts:
            if isinstance(part.get("$ref"), str):
                part = self._inline(part["$ref"], part, 0)
            for key, value in part.items():
                if key == "properties" and isinstance(value, dict):
                    merged.setdefault("properties", {})
                    if isinstance(merged["properties"], dict):
                        merged["properties"] = {**merged["properties"], **value}
                elif key == "required" and isinstance(value, list):
                    known = merged.get("required") if isinstance(merged.get("required"), list) else []
                    merged["required"] = list(dict.fromkeys(r for r in [*known, *value] if isinstance(r, str)))
                elif key == "description" and isinstance(value, str) and "description" in merged:
                    _note(merged, value)
                else:
                    merged.setdefault(key, value)
        return merged
