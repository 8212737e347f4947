"""Request codecs: agent bodies -> neutral -> backend bodies, and round trips.

Realistic agent bodies come from tests/fixtures/streams/requests/ (Claude Code 2.1.332,
Codex 0.169 and Gemini CLI 0.61 against a scripted server, long texts cut,
ids zeroed). Backend bodies are validated against the official SDKs' request
types (Anthropic, OpenAI) and google-genai's models.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pydantic
import pytest
from anthropic.types import message_create_params
from google.genai import types as genai_types
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import completion_create_params
from openai.types.responses import response_create_params

from agentwrap.errors import RequestError
from agentwrap.protocols import PROTOCOLS
from agentwrap.protocols.neutral.request import (
    ImagePart,
    Message,
    NeutralRequest,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    function_tool,
    seal,
    unseal,
    wire_call_id,
    wire_tool_name,
)
from agentwrap.protocols.translate import translate_request
from agentwrap.protocols.codec import codec

REQUESTS = Path(__file__).resolve().parents[1] / "fixtures" / "streams" / "requests"
FIXTURES = {
    "claude-code-tool-turn": ("anthropic_messages", "/v1/messages"),
    "codex-code-mode": ("openai_responses", "/v1/responses"),
    "codex-classic": ("openai_responses", "/v1/responses"),
    "gemini-cli-tool-turn": ("gemini", "/v1beta/models/gemini-3.8-flash:streamGenerateContent"),
    "gemini-cli-router": ("gemini", "/v1beta/models/gemini-3.5-flash-lite:generateContent"),
}


def load(name: str) -> dict:
    return json.loads((REQUESTS / f"{name}.json").read_text())


def translate(name: str, backend: str, **kw: Any) -> tuple[str, dict, Any]:
    agent, path = FIXTURES[name]
    return translate_request(agent, load(name), path, backend, "backend-model", **kw)


# -- validating backend bodies with the providers' own types ----------------------------

_ADAPTERS = {
    ("anthropic_messages", True): pydantic.TypeAdapter(message_create_params.MessageCreateParamsStreaming),
    ("anthropic_messages", False): pydantic.TypeAdapter(message_create_params.MessageCreateParamsNonStreaming),
    ("openai_chat", True): pydantic.TypeAdapter(completion_create_params.CompletionCreateParamsStreaming),
    ("openai_chat", False): pydantic.TypeAdapter(completion_create_params.CompletionCreateParamsNonStreaming),
    ("openai_responses", True): pydantic.TypeAdapter(response_create_params.ResponseCreateParamsStreaming),
    ("openai_responses", False): pydantic.TypeAdapter(response_create_params.ResponseCreateParamsNonStreaming),
}


def _consume(value: Any) -> None:
    """Force pydantic's lazy iterable validators to check every element."""
    if isinstance(value, dict):
        for item in value.values():
            _consume(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _consume(item)
    elif type(value).__name__ == "ValidatorIterator":
        for item in value:
            _consume(item)


def validate_body(protocol: str, path: str, body: dict) -> None:
    json.dumps(body, allow_nan=False)  # plain JSON
    if protocol == "gemini":
        assert path.startswith("/v1beta/models/backend-model:")
        for content in body["contents"]:
            genai_types.Content.model_validate(content)
        for tool in body.get("tools", []):
            genai_types.Tool.model_validate(tool)
        if "systemInstruction" in body:
            genai_types.Content.model_validate(body["systemInstruction"])
        if "generationConfig" in body:
            genai_types.GenerationConfig.model_validate(body["generationConfig"])
        if "toolConfig" in body:
            genai_types.ToolConfig.model_validate(body["toolConfig"])
        return
    assert path == {"anthropic_messages": "/v1/messages", "openai_chat": "/chat/completions", "openai_responses": "/responses"}[protocol]
    _consume(_ADAPTERS[(protocol, body["stream"])].validate_python(body))


@pytest.mark.parametrize("backend", PROTOCOLS)
@pytest.mark.parametrize("name", list(FIXTURES))
def test_real_agent_requests_translate_to_valid_backend_bodies(name: str, backend: str) -> None:
    path, body, ctx = translate(name, backend)
    validate_body(backend, path, body)
    assert ctx.backend_model == "backend-model"
    if backend == "anthropic_messages":
        assert (b"anthropic-version", b"2023-06-01") in ctx.upstream_headers


def test_validator_catches_a_bad_body() -> None:
    _, body, _ = translate("claude-code-tool-turn", "anthropic_messages")
    body["messages"][0]["content"][0]["type"] = "txet"
    with pytest.raises(pydantic.ValidationError):
        validate_body("anthropic_messages", "/v1/messages", body)


# -- Claude Code ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", PROTOCOLS)
def test_claude_billing_header_only_reaches_anthropic(backend: str) -> None:
    _, body, _ = translate("claude-code-tool-turn", backend)
    assert ("x-anthropic-billing-header:" in json.dumps(body)) == (backend == "anthropic_messages")


@pytest.mark.parametrize("backend", [p for p in PROTOCOLS if p != "anthropic_messages"])
def test_claude_system_entry_in_messages_is_folded_into_the_user_turn(backend: str) -> None:
    _, body, _ = translate("claude-code-tool-turn", backend)
    text = json.dumps(body)
    assert "# Environment" in text and '"system"' not in json.dumps(body.get("messages", [])[1:])
    req = codec("anthropic_messages").decode_request(load("claude-code-tool-turn"))
    first_user = req.messages[0]
    assert first_user.role == "user" and first_user.parts[-1].text.startswith("# Environment")  # after the prompt, where it stood
    assert [m.role for m in req.messages] == ["user", "assistant", "user"]


@pytest.mark.parametrize("backend", [p for p in PROTOCOLS if p != "anthropic_messages"])
def test_claude_cache_control_is_not_carried(backend: str) -> None:
    _, body, _ = translate("claude-code-tool-turn", backend)
    assert "cache_control" not in json.dumps(body)


def test_anthropic_backend_gets_its_own_cache_breakpoints() -> None:
    _, body, _ = translate("codex-code-mode", "anthropic_messages")
    marks = json.dumps(body).count('"cache_control"')
    assert 1 <= marks <= 4  # Anthropic allows at most four
    assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}


def test_claude_tool_schemas_lose_dollar_schema_and_gemini_keywords() -> None:
    _, body, _ = translate("claude-code-tool-turn", "gemini")
    text = json.dumps(body["tools"])
    for keyword in ("$schema", "additionalProperties", "propertyNames", "exclusiveMinimum", '"const"'):
        assert keyword not in text


# -- Codex ----------------------------------------------------------------------------------


def test_codex_developer_messages_become_the_system_prompt() -> None:
    _, body, _ = translate("codex-code-mode", "anthropic_messages")
    assert body["system"][0]["text"].startswith("You are Codex")
    assert all(m["role"] in ("user", "assistant") for m in body["messages"])
    _, body, _ = translate("codex-code-mode", "openai_responses")
    assert body["instructions"].startswith("You are Codex")


@pytest.mark.parametrize("backend", ["anthropic_messages", "openai_chat", "gemini"])
def test_codex_additional_tools_namespaces_and_freeform_exec(backend: str) -> None:
    _, body, ctx = translate("codex-code-mode", backend)
    if backend == "anthropic_messages":
        tools = {t["name"]: t["input_schema"] for t in body["tools"]}
    elif backend == "openai_chat":
        tools = {t["function"]["name"]: t["function"]["parameters"] for t in body["tools"]}
    else:
        tools = {t["name"]: t.get("parameters") for t in body["tools"][0]["functionDeclarations"]}
    assert tools["exec"]["properties"]["input"]["type"] == "string"  # freeform -> one string
    assert "clock__sleep" in tools and "wait" in tools  # namespace "functions" keeps plain names
    assert ctx.custom_tools == {"exec"}
    assert ctx.namespaces["clock__sleep"] == ("clock", "sleep")


def test_codex_custom_tool_call_history_travels_as_input_object() -> None:
    _, body, _ = translate("codex-code-mode", "anthropic_messages")
    call = body["messages"][1]["content"][0]
    assert call["type"] == "tool_use" and call["name"] == "exec"
    assert call["input"]["input"].startswith("const r = await tools.exec_command")
    result = body["messages"][2]["content"][0]
    assert result["type"] == "tool_result" and result["content"][0]["text"].startswith("Script completed")


def test_codex_to_responses_keeps_namespaces_and_custom_tools() -> None:
    _, body, _ = translate("codex-code-mode", "openai_responses")
    groups = {t["name"]: [x["name"] for x in t["tools"]] for t in body["tools"]}
    assert groups["clock"] == ["sleep"] and "exec" in groups["functions"]
    assert body["input"][-2] == {"type": "custom_tool_call", "call_id": "call_1", "name": "exec", "input": load("codex-code-mode")["input"][-2]["input"]}
    assert body["input"][-1]["type"] == "custom_tool_call_output"


def test_codex_hosted_tools_are_noted_not_sent() -> None:
    _, body, ctx = translate("codex-classic", "anthropic_messages")
    assert {t["name"] for t in body["tools"]} == {"exec_command", "apply_patch", "view_image"}
    assert any("web_search" in n for n in ctx.notes) and any("tool_search" in n for n in ctx.notes)
    assert "grammar" in next(t for t in body["tools"] if t["name"] == "apply_patch")["description"]


def codex_with_reasoning(encrypted: str) -> dict:
    body = load("codex-classic")
    call = next(i for i in body["input"] if i.get("type") == "function_call")
    at = body["input"].index(call)
    body["input"].insert(at, {"type": "reasoning", "id": "rs_9", "summary": [{"type": "summary_text", "text": "Make the file."}], "encrypted_content": encrypted})
    return body


@pytest.mark.parametrize("backend", PROTOCOLS)
def test_codex_reasoning_goes_back_only_to_its_producer(backend: str) -> None:
    body = codex_with_reasoning("gAAAAB-openai-blob")
    _, out, _ = translate_request("openai_responses", body, "/v1/responses", backend, "m")
    assert ("gAAAAB-openai-blob" in json.dumps(out)) == (backend == "openai_responses")
    if backend == "openai_responses":
        item = next(i for i in out["input"] if i.get("type") == "reasoning")
        assert item == {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Make the file."}], "id": "rs_9", "encrypted_content": "gAAAAB-openai-blob"}


def test_sealed_anthropic_thinking_comes_back_from_codex_to_anthropic() -> None:
    envelope = seal("anthropic_messages", {"signature": "EqQBsig"}, "Make the file.")
    body = codex_with_reasoning(envelope)
    _, out, _ = translate_request("openai_responses", body, "/v1/responses", "anthropic_messages", "m")
    assistant = next(m for m in out["messages"] if m["role"] == "assistant")
    assert assistant["content"][0] == {"type": "thinking", "thinking": "Make the file.", "signature": "EqQBsig"}
    assert "thinking" in out  # the last assistant turn is signed: thinking may stay on
    for backend in ("openai_chat", "gemini", "openai_responses"):
        _, other, _ = translate_request("openai_responses", body, "/v1/responses", backend, "m")
        assert "EqQBsig" not in json.dumps(other)  # never forged elsewhere


def test_seal_is_canonical_base64_and_round_trips() -> None:
    import base64

    value = seal("gemini", {"thought_signature": "c2ln", "protocol": "ignored"}, "")
    assert base64.b64encode(base64.b64decode(value)).decode() == value  # google-genai decodes it as bytes
    assert unseal(value) == ({"thought_signature": "c2ln", "protocol": "gemini"}, "")
    assert unseal("a7e1zz") is None and unseal("EqQB") is None and unseal(None) is None


def test_anthropic_thinking_is_off_when_the_tool_turn_came_from_another_backend() -> None:
    _, body, _ = translate("claude-code-tool-turn", "anthropic_messages")
    assert "thinking" in body  # same protocol: Claude Code's own setting passes
    req = codec("anthropic_messages").decode_request(load("claude-code-tool-turn"))
    path, body = codec("anthropic_messages").encode_request(_with_origin(req, "openai_chat"), "m")
    assert "thinking" not in body  # its last tool turn has no signed thinking block


def _with_origin(req: NeutralRequest, origin: str) -> NeutralRequest:
    req = copy.deepcopy(req)
    req.origin = origin
    return req


# -- Gemini CLI --------------------------------------------------------------------------------


def gemini_history_without_ids() -> dict:
    body = load("gemini-cli-tool-turn")
    call = {"name": "read_file", "args": {"file_path": "a.py"}}
    body["contents"][1:] = [
        {"role": "model", "parts": [{"functionCall": dict(call)}, {"functionCall": {"name": "read_file", "args": {"file_path": "b.py"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "read_file", "response": {"output": "A"}}}, {"functionResponse": {"name": "read_file", "response": {"error": "no such file"}}}]},
    ]
    return body


def test_gemini_calls_without_ids_get_stable_paired_ids() -> None:
    body = gemini_history_without_ids()
    req = codec("gemini").decode_request(body, FIXTURES["gemini-cli-tool-turn"][1])
    calls = [p for m in req.messages for p in m.parts if isinstance(p, ToolCallPart)]
    results = [p for m in req.messages for p in m.parts if isinstance(p, ToolResultPart)]
    assert [c.call_id for c in calls] == ["call_read_file_1_0", "call_read_file_1_1"]
    assert [r.call_id for r in results] == [c.call_id for c in calls]  # oldest unanswered call first
    assert results[1].is_error and results[1].content == "no such file"
    # The ids stay the same when the history grows by a turn.
    body["contents"].append({"role": "model", "parts": [{"text": "Both read."}]})
    again = codec("gemini").decode_request(body, FIXTURES["gemini-cli-tool-turn"][1])
    assert [p.call_id for m in again.messages for p in m.parts if isinstance(p, ToolCallPart)] == [c.call_id for c in calls]
    _, out, _ = translate_request("gemini", body, FIXTURES["gemini-cli-tool-turn"][1], "openai_chat", "m")
    tool_messages = [m for m in out["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == [c.call_id for c in calls]


def test_gemini_thought_signature_goes_back_only_to_gemini() -> None:
    _, body, _ = translate("gemini-cli-tool-turn", "gemini")
    part = body["contents"][1]["parts"][0]
    assert part["thoughtSignature"] == "skip_thought_signature_validator"  # Gemini CLI's own value, kept
    for backend in ("anthropic_messages", "openai_chat", "openai_responses"):
        text = json.dumps(translate("gemini-cli-tool-turn", backend)[1])
        assert "skip_thought_signature_validator" not in text and "thoughtSignature" not in text


@pytest.mark.parametrize("backend", PROTOCOLS)
def test_gemini_routing_call_keeps_its_json_schema(backend: str) -> None:
    path, body, ctx = translate("gemini-cli-router", backend)
    assert not ctx.stream
    if backend == "anthropic_messages":
        schema = body["output_config"]["format"]["schema"]
        assert schema["additionalProperties"] is False  # Anthropic structured outputs need closed objects
    elif backend == "openai_chat":
        schema = body["response_format"]["json_schema"]["schema"]
    elif backend == "openai_responses":
        schema = body["text"]["format"]["schema"]
    else:
        assert path.endswith(":generateContent")
        schema = body["generationConfig"]["responseSchema"] if "responseSchema" in body["generationConfig"] else body["generationConfig"]["responseJsonSchema"]
        assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert schema["properties"]["complexity_score"]["type"].lower() == "integer"
    if backend != "gemini":
        assert schema["type"] == "object"  # Gemini CLI writes "OBJECT"; JSON Schema wants lower case


# -- settings mapping -------------------------------------------------------------------------------


def test_reasoning_settings_map_across_protocols() -> None:
    body = {"model": "c", "max_tokens": 20000, "messages": [{"role": "user", "content": "hi"}], "thinking": {"type": "enabled", "budget_tokens": 5000}}
    _, chat, _ = translate_request("anthropic_messages", body, "/v1/messages", "openai_chat", "m")
    assert chat["reasoning_effort"] == "medium"
    _, resp, _ = translate_request("anthropic_messages", body, "/v1/messages", "openai_responses", "m")
    assert resp["reasoning"] == {"effort": "medium", "summary": "auto"} and resp["include"] == ["reasoning.encrypted_content"]
    _, gem, _ = translate_request("anthropic_messages", body, "/v1/messages", "gemini", "m")
    assert gem["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 5000}
    codex = {"model": "g", "input": "hi", "reasoning": {"effort": "high"}, "max_output_tokens": 40000}
    _, anth, _ = translate_request("openai_responses", codex, "/v1/responses", "anthropic_messages", "m")
    assert anth["thinking"] == {"type": "enabled", "budget_tokens": 24000} and anth["max_tokens"] == 40000
    gemini = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}, "temperature": 1.5, "topP": 0.9}}
    _, anth, _ = translate_request("gemini", gemini, "/v1beta/models/x:generateContent", "anthropic_messages", "m")
    assert "thinking" not in anth and anth["temperature"] == 1.0 and "top_p" not in anth  # clamped; one sampler only


def test_max_tokens_cap() -> None:
    _, body, _ = translate("claude-code-tool-turn", "openai_chat", max_tokens_cap=8192)
    assert body["max_tokens"] == 8192


def test_tool_choice_maps_across_protocols() -> None:
    body = {"model": "g", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}}], "tool_choice": {"type": "function", "function": {"name": "f"}}, "parallel_tool_calls": False}
    _, anth, _ = translate_request("openai_chat", body, "/v1/chat/completions", "anthropic_messages", "m")
    assert anth["tool_choice"] == {"type": "tool", "name": "f", "disable_parallel_tool_use": True}
    _, gem, _ = translate_request("openai_chat", body, "/v1/chat/completions", "gemini", "m")
    assert gem["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}
    _, resp, _ = translate_request("openai_chat", body, "/v1/chat/completions", "openai_responses", "m")
    assert resp["tool_choice"] == {"type": "function", "name": "f"} and resp["parallel_tool_calls"] is False


def test_tool_names_a_backend_refuses_are_renamed_deterministically() -> None:
    name = "mcp.server:read file"
    for protocol in PROTOCOLS:
        wire = wire_tool_name(name, protocol)
        assert wire == wire_tool_name(name, protocol) and wire != name
        assert len(wire) <= 64
    assert wire_tool_name("ok_name-1", "openai_chat") == "ok_name-1"
    assert wire_tool_name("1tool", "gemini").startswith("_")
    assert wire_call_id("functions.exec:0", "anthropic_messages") != "functions.exec:0"
    assert wire_call_id("functions.exec:0", "openai_chat") == "functions.exec:0"


# -- what cannot be mapped is refused, naming it ------------------------------------------------------


@pytest.mark.parametrize(
    "agent,body,backend,words",
    [
        ("openai_responses", {"model": "g", "input": "hi", "previous_response_id": "resp_1"}, "anthropic_messages", "previous_response_id"),
        ("openai_responses", {"model": "g", "input": [{"type": "web_search_call", "id": "ws_1"}]}, "gemini", "web_search_call"),
        ("openai_chat", {"model": "g", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}, "gemini", "URL"),
        ("anthropic_messages", {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}]}]}, "openai_chat", "server_tool_use"),
        ("openai_chat", {"model": "g", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]}, "anthropic_messages", "input_audio"),
        ("anthropic_messages", {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "base64", "media_type": "application/msword", "data": "AAAA"}}]}]}, "anthropic_messages", "application/msword"),
        ("gemini", {"contents": [{"role": "model", "parts": [{"executableCode": {"code": "1"}}]}]}, "openai_chat", "executableCode"),
        ("anthropic_messages", [], "openai_chat", "JSON object"),
    ],
)
def test_unmappable_content_is_refused_by_name(agent: str, body: Any, backend: str, words: str) -> None:
    with pytest.raises(RequestError, match=words):
        translate_request(agent, body, "/v1beta/models/x:generateContent" if agent == "gemini" else "", backend, "m")


def test_images_cross_every_protocol() -> None:
    png = "iVBORw0KGgo="
    body = {"model": "c", "max_tokens": 50, "messages": [{"role": "user", "content": [{"type": "text", "text": "what is this"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}}]}]}
    for backend in PROTOCOLS:
        path, out, _ = translate_request("anthropic_messages", body, "/v1/messages", backend, "backend-model")
        validate_body(backend, path, out)
        assert png in json.dumps(out)


def test_tool_result_images_reach_chat_as_a_user_message() -> None:
    png = "iVBORw0KGgo="
    body = {"model": "c", "max_tokens": 50, "messages": [
        {"role": "user", "content": "shot"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "screenshot", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "ok"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}}]}]},
    ]}  # fmt: skip
    _, out, _ = translate_request("anthropic_messages", body, "/v1/messages", "openai_chat", "m")
    assert out["messages"][-2] == {"role": "tool", "tool_call_id": "t1", "content": "ok"}
    assert out["messages"][-1]["role"] == "user" and png in json.dumps(out["messages"][-1])


# -- round trips: neutral -> wire -> neutral ---------------------------------------------------------

_word = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=6)
_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


def _args() -> st.SearchStrategy[str]:
    value = st.one_of(st.integers(-5, 5), _text, st.booleans(), st.lists(st.integers(0, 3), max_size=2))
    return st.dictionaries(_word, value, max_size=3).map(lambda d: json.dumps(d, ensure_ascii=False, separators=(",", ":")))


def _meta(protocol: str) -> st.SearchStrategy:
    if protocol == "anthropic_messages":
        return st.one_of(st.builds(lambda s: {"protocol": protocol, "signature": s}, _word), st.builds(lambda s: {"protocol": protocol, "redacted": s}, _word))
    if protocol == "openai_responses":
        return st.builds(lambda s, i: {"protocol": protocol, "encrypted_content": s, **i}, _word, st.just({}) | st.just({"id": "rs_1"}))
    if protocol == "gemini":
        return st.builds(lambda s: {"protocol": protocol, "thought_signature": s}, _word)
    return st.just({"protocol": protocol})


@st.composite
def requests(draw: Any, protocol: str) -> NeutralRequest:
    tools = draw(st.lists(st.builds(
        Tool, _word, st.just("") | _text,
        st.dictionaries(_word, st.sampled_from([{"type": "string"}, {"type": "integer", "description": "n"}]), min_size=1, max_size=3).map(lambda p: {"type": "object", "properties": p}),
        st.sampled_from(["function", "custom"]),
    ), max_size=3, unique_by=lambda t: t.name))  # fmt: skip
    names = [t.name for t in tools] or ["f"]
    messages: list[Message] = []
    open_calls: list[str] = []
    for turn in range(draw(st.integers(1, 4))):
        parts: list = [ToolResultPart(c, draw(_text | st.just("")), is_error=draw(st.booleans())) for c in open_calls]
        parts += draw(st.lists(st.one_of(st.builds(TextPart, _text), st.builds(ImagePart, st.just("image/png"), st.just("iVBORw0KGgo="))), min_size=0 if parts else 1, max_size=2))
        messages.append(Message("user", parts))
        if turn % 2 == 0 or draw(st.booleans()):
            kind = draw(st.sampled_from(["function", "custom"]))
            calls = [ToolCallPart(f"call_{turn}_{i}", draw(st.sampled_from(names)), draw(_args() if kind == "function" else _text), kind) for i in range(draw(st.integers(0, 2)))]
            thinking = [ThinkingPart(draw(_text), draw(_meta(protocol)))] if draw(st.booleans()) else []
            if thinking and "redacted" in thinking[0].provider_meta:
                thinking[0].text = ""  # redacted thinking has no text
            text = draw(st.lists(st.builds(TextPart, _text), min_size=0 if (calls or thinking) else 1, max_size=2))
            messages.append(Message("assistant", thinking + text + calls))
            open_calls = [c.call_id for c in calls]
        else:
            open_calls = []
    choice = draw(st.none() | st.builds(ToolChoice, st.sampled_from(["auto", "none", "required", "tool"]), st.sampled_from(names), st.none() | st.booleans()))
    if choice is not None and choice.mode != "tool":
        choice.name = ""
    if choice is not None and choice.mode == "tool" and choice.name not in [t.name for t in tools]:
        choice = None
    return NeutralRequest(
        model="m",
        system=draw(st.lists(st.builds(TextPart, _text), max_size=2 if protocol == "anthropic_messages" else 1)),
        messages=messages,
        tools=tools,
        tool_choice=choice,
        max_tokens=draw(st.none() | st.integers(1, 5000)),
        temperature=draw(st.none() | st.sampled_from([0.0, 0.5, 1.0])),
        top_p=draw(st.none() | st.just(0.9)),
        stop=draw(st.lists(_word, max_size=3)),
        stream=draw(st.booleans()),
    )


SKIP = "skip_thought_signature_validator"


def _part_view(part: Any, protocol: str) -> Any:
    if isinstance(part, TextPart):
        return ("text", part.text)
    if isinstance(part, ImagePart):
        return ("image", part.media_type, part.data, part.url)
    if isinstance(part, ThinkingPart):
        meta = part.provider_meta if isinstance(part.provider_meta, dict) and part.provider_meta.get("protocol") == protocol else None
        return ("thinking", part.text, json.dumps(meta, sort_keys=True)) if meta else None
    if isinstance(part, ToolCallPart):
        custom = part.tool_kind == "custom"
        if custom and protocol == "openai_responses":
            return ("call", part.call_id, part.name, "custom", part.arguments_json)
        args = {"input": part.arguments_json} if custom else json.loads(part.arguments_json)
        return ("call", part.call_id, part.name, "function", args)
    if isinstance(part, ToolResultPart):
        error = part.is_error if protocol in ("anthropic_messages", "gemini") else False
        return ("result", part.call_id, part.content, error)
    raise AssertionError(part)


def view(req: NeutralRequest, protocol: str) -> dict:
    """What `protocol` can carry of a request, in comparable form."""
    messages: list[list] = []
    for message in req.messages:
        parts = [v for v in (_part_view(p, protocol) for p in message.parts) if v is not None]
        if protocol != "openai_responses" and message.role == "user":
            parts = [p for p in parts if p[0] == "result"] + [p for p in parts if p[0] != "result"]
        if protocol == "openai_chat" and message.role == "assistant":
            texts = "".join(p[1] for p in parts if p[0] == "text")
            calls = [p for p in parts if p[0] == "call"]
            # Chat has no thinking-only assistant message: it goes with its turn.
            parts = [p for p in parts if p[0] == "thinking"] + ([("text", texts)] if texts else []) + calls if texts or calls else []
        if not parts:
            continue
        if messages and messages[-1][0] == message.role:
            messages[-1][1].extend(parts)
        else:
            messages.append([message.role, parts])
    tools = []
    for tool in req.tools:
        if tool.tool_kind == "custom" and protocol == "openai_responses":
            tools.append(("custom", tool.name, tool.description))
        else:
            name, description, params = function_tool(tool, protocol)
            tools.append(("function", name, description, params if params.get("properties") else None))
    choice = req.tool_choice
    if choice is None or not req.tools:
        choice = None
    elif protocol == "anthropic_messages":
        choice = (choice.mode, choice.name, False if choice.parallel is False and choice.mode != "none" else None)
    elif protocol == "gemini":
        choice = None if choice.mode == "auto" else (choice.mode, choice.name, None)
    else:
        choice = None if choice.mode == "auto" and choice.parallel is None else (choice.mode, choice.name, choice.parallel)
    temperature, top_p = req.temperature, req.top_p
    if protocol == "anthropic_messages" and temperature is not None:
        top_p = None
    max_tokens = req.max_tokens if req.max_tokens is not None or protocol != "anthropic_messages" else 32000
    system = [p.text for p in req.system]
    return {
        "system": system if protocol == "anthropic_messages" else ["\n\n".join(system)] if system else [],
        "messages": messages,
        "tools": tools,
        "tool_choice": choice,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "stop": [] if protocol == "openai_responses" else list(req.stop),
        "stream": req.stream,
    }


def _strip_skip(req: NeutralRequest) -> NeutralRequest:
    for message in req.messages:
        for part in message.parts:
            if isinstance(part, ToolCallPart) and isinstance(part.provider_meta, dict) and part.provider_meta.get("thought_signature") == SKIP:
                part.provider_meta = None
    return req


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_request_round_trip(protocol: str) -> None:
    module = codec(protocol)

    @settings(max_examples=120, deadline=None)
    @given(requests(protocol))
    def check(req: NeutralRequest) -> None:
        path, body = module.encode_request(copy.deepcopy(req), "m")
        json.dumps(body)
        back = _strip_skip(module.decode_request(json.loads(json.dumps(body)), path))
        assert view(back, protocol) == view(req, protocol)

    check()
