"""JSON-schema cleaning: each rule, and that any input gives an accepted schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwrap.protocols.schema import clean_schema, tool_parameters

GEMINI = "gemini"


@pytest.mark.parametrize(
    "schema,expected",
    [
        # keywords Gemini's Schema does not know are dropped
        ({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
         {"type": "object", "properties": {"a": {"type": "string"}}}),
        ({"type": "object", "properties": {"a": {"type": "string", "encrypted": True}}, "propertyNames": {"pattern": "^x"}},
         {"type": "object", "properties": {"a": {"type": "string"}}}),
        # const -> an enum of one (strings), or a note
        ({"const": "fixed"}, {"enum": ["fixed"], "type": "string"}),
        ({"type": "integer", "const": 3}, {"type": "integer", "description": "(must be 3)"}),
        # non-string enums become a note
        ({"type": "integer", "enum": [1, 2]}, {"type": "integer", "description": "(one of: 1, 2)"}),
        # type arrays with null -> nullable; several types -> anyOf
        ({"type": ["string", "null"]}, {"type": "string", "nullable": True}),
        ({"type": ["string", "integer"]}, {"anyOf": [{"type": "string"}, {"type": "integer"}]}),
        # oneOf -> anyOf; a null branch -> nullable
        ({"oneOf": [{"type": "string"}, {"type": "null"}]}, {"type": "string", "nullable": True}),
        # formats Gemini refuses move into the description
        ({"type": "string", "format": "uri", "description": "A link"}, {"type": "string", "description": "A link (format: uri)"}),
        ({"type": "string", "format": "date-time"}, {"type": "string", "format": "date-time"}),
        # exclusive bounds become inclusive ones plus a note
        ({"type": "number", "exclusiveMinimum": 0}, {"type": "number", "minimum": 0, "description": "(greater than 0)"}),
        # $ref / $defs are inlined
        ({"type": "object", "properties": {"p": {"$ref": "#/$defs/P"}}, "$defs": {"P": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}},
         {"type": "object", "properties": {"p": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}}),
        # allOf of objects merges
        ({"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}, {"properties": {"b": {"type": "integer"}}}]},
         {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a"]}),
        # required names that are not properties, empty properties, arrays without items
        ({"type": "object", "properties": {}, "required": ["ghost"]}, {"type": "object"}),
        ({"type": "array"}, {"type": "array", "items": {"type": "string"}, "description": "(items of any type)"}),
        # upper-case OpenAPI types (Gemini CLI) are normalized
        ({"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}}, {"type": "object", "properties": {"n": {"type": "integer"}}}),
        # maps cannot be said, so they are described
        ({"type": "object", "additionalProperties": {"type": "string"}}, {"type": "object", "description": "(an object with arbitrary keys)"}),
        # examples -> example
        ({"type": "string", "examples": ["a", "b"]}, {"type": "string", "example": "a"}),
    ],
)  # fmt: skip
def test_gemini_rules(schema: dict, expected: dict) -> None:
    assert clean_schema(schema, GEMINI) == expected


def test_gemini_recursive_ref_is_cut() -> None:
    schema = {"$ref": "#/$defs/Node", "$defs": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}}}
    cleaned = clean_schema(schema, GEMINI)
    depth, node = 0, cleaned
    while "properties" in node:
        node, depth = node["properties"]["child"], depth + 1
    assert 2 <= depth <= 6 and "recursive" in node["description"]


def test_clean_schema_does_not_touch_its_input() -> None:
    schema = {"type": "object", "properties": {"a": {"const": "x"}}, "additionalProperties": False}
    before = json.dumps(schema)
    clean_schema(schema, GEMINI)
    clean_schema(schema, "anthropic_messages", strict=True)
    assert json.dumps(schema) == before


def test_json_schema_targets_keep_meaning() -> None:
    schema = {"$schema": "x", "type": "OBJECT", "properties": {"a": {"type": "STRING", "nullable": True, "propertyOrdering": ["a"]}}, "$defs": {"D": {"type": "STRING"}}}
    for target in ("anthropic_messages", "openai_chat", "openai_responses"):
        assert clean_schema(schema, target) == {"type": "object", "properties": {"a": {"type": ["string", "null"]}}, "$defs": {"D": {"type": "string"}}}


def test_anthropic_structured_output_subset() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 100, "description": "Score"}, "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2}}}
    cleaned = clean_schema(schema, "anthropic_messages", strict=True)
    assert cleaned["additionalProperties"] is False
    assert cleaned["properties"]["n"] == {"type": "integer", "description": "Score (minimum: 1) (maximum: 100)"}
    assert cleaned["properties"]["tags"]["description"] == "(minItems: 2)"


@pytest.mark.parametrize("target", ["anthropic_messages", "openai_chat", "openai_responses", GEMINI])
def test_tool_parameters_are_objects(target: str) -> None:
    assert tool_parameters(None, target)["type"] == "object"
    wrapped = tool_parameters({"type": "string"}, target)
    assert wrapped["type"] == "object" and wrapped["properties"]["value"]["type"] == "string"


_GEMINI_KEYS = {"type", "format", "title", "description", "nullable", "enum", "items", "properties", "required", "minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "minimum", "maximum", "anyOf", "default", "example", "propertyOrdering"}
_keys = st.sampled_from(["type", "properties", "items", "required", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "$defs", "format", "nullable", "additionalProperties", "exclusiveMinimum", "examples", "description", "minimum", "x-custom"])
_leaf = st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from(["string", "object", "array", "integer", "null", "STRING", "uri", "#/$defs/A", "a"])
_schema = st.recursive(_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys | st.text(max_size=3), inner, max_size=5), max_leaves=25)


def _gemini_ok(node: Any, in_properties: bool = False) -> None:
    if in_properties:
        assert isinstance(node, dict)
        for sub in node.values():
            _gemini_ok(sub)
        return
    if isinstance(node, dict):
        assert set(node) <= _GEMINI_KEYS, set(node) - _GEMINI_KEYS
        if "enum" in node:
            assert node["type"] == "string" and all(isinstance(v, str) for v in node["enum"])
        if node.get("type") == "array":
            assert isinstance(node.get("items"), dict)
        if "properties" in node:
            assert node["properties"]
            _gemini_ok(node["properties"], True)
        for key in ("items",):
            if key in node:
                _gemini_ok(node[key])
        for sub in node.get("anyOf", []):
            _gemini_ok(sub)


@settings(max_examples=300, deadline=None)
@given(_schema)
def test_any_schema_cleans_without_error(schema: Any) -> None:
    for target in ("anthropic_messages", "openai_chat", GEMINI):
        json.dumps(clean_schema(schema, target))
        json.dumps(tool_parameters(schema, target))
    json.dumps(clean_schema(schema, "anthropic_messages", strict=True))
    _gemini_ok(clean_schema(schema, GEMINI))
