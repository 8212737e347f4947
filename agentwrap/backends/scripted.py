"""The scripted backend: answers model calls from a TOML file of turns, in any protocol.

Theory of operation: a script is a list of turns. The turn that answers a
request is chosen by how many assistant turns the conversation already holds,
so the backend is stateless and deterministic: the first request gets turn 1,
the request carrying turn 1's tool result gets turn 2, and so on, whatever side
requests the agent makes in between. Past the end, the last turn repeats
unless it is a tool call, in which case a closing text is sent so an agent
cannot loop forever. JSON-mode requests (Gemini CLI's routing classifier) get
a minimal value that satisfies the requested schema instead of a turn.

A turn (all keys optional, at least one of text/shell/tool/error):

    [[turns]]
    thinking = "..."            # a reasoning part first
    text = "Hello {last_user_text}"  # what the user typed last (neutral/summary.py::typed_text)
    shell = "echo hi > made.txt"  # a call of whatever shell tool the agent offers
    tool = "Write"              # or a named tool call ...
    arguments = { file_path = "a.txt", content = "x" }   # ... with these JSON arguments
    error = { status = 529, type = "overloaded", message = "try later" }

As a proxy backend (`send`, the `backends.base.Backend` seam) it speaks
whatever protocol the request speaks and answers with an in-memory response,
which then takes the same relay and capture path as an http backend's.

Pure: no sockets, no clock. Only `from_file` reads the script.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from typing import Any

from agentwrap.backends.base import MemoryResponse
from agentwrap.errors import ConfigError
from agentwrap.protocols import neutral as ev
from agentwrap.protocols.codec import codec, encode_error
from agentwrap.protocols.neutral.summary import typed_text

__all__ = ["Turn", "Script", "ScriptedBackend", "ScriptedReply", "example_for_schema"]

END_TEXT = "(agentwrap scripted backend: the script has no more turns.)"

# Shell tools as each agent names them, most specific first.
SHELL_TOOL_NAMES = ("Bash", "run_shell_command", "shell_command", "exec_command", "shell", "local_shell", "bash", "exec")


@dataclass(frozen=True, slots=True)
class Turn:
    text: str | None = None
    thinking: str | None = None
    shell: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @property
    def calls_tool(self) -> bool:
        return self.shell is not None or self.tool is not None


@dataclass(frozen=True, slots=True)
class Script:
    turns: tuple[Turn, ...]
    source: str = "<script>"

    @classmethod
    def from_toml(cls, text: str, source: str = "<script>") -> "Script":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: invalid TOML: {exc}") from exc
        raw = data.get("turns")
        if not isinstance(raw, list) or not raw:
            raise ConfigError(f'{source}: a script needs at least one [[turns]] table')
        turns = []
        allowed = set(Turn.__slots__)
        for i, t in enumerate(raw):
            unknown = set(t) - allowed
            if unknown:
                raise ConfigError(f"{source}: turns[{i}]: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(allowed))})")
            if not (t.get("text") or t.get("shell") or t.get("tool") or t.get("error")):
                raise ConfigError(f"{source}: turns[{i}]: give at least one of text, shell, tool or error")
            turns.append(Turn(**t))
        return cls(tuple(turns), source)


@dataclass(slots=True)
class ScriptedReply:
    status: int
    content_type: str
    chunks: list[bytes] = field(default_factory=list)
    stream: bool = False

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


def example_for_schema(schema: Any) -> Any:
    """A small value that satisfies a JSON schema (or Gemini's upper-case schema dialect)."""
    if not isinstance(schema, dict):
        return "scripted"
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return example_for_schema(schema[key][0])
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    kind = str(kind).lower()
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: example_for_schema(sub) for name, sub in props.items()}
    if kind == "array":
        n = schema.get("minItems", 0) or 0
        return [example_for_schema(schema.get("items", {})) for _ in range(n)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", 1)
        high = schema.get("maximum")
        value = max(low, 1) if high is None else min(max(low, 1), high)
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return "scripted"


def _shell_call(tools, command: str) -> tuple[str, str, str]:
    """(tool name, tool kind, input text) for running `command` with the agent's shell tool."""
    by_name = {t.name: t for t in tools}
    for name in SHELL_TOOL_NAMES:
        tool = by_name.get(name)
        if tool is None:
            continue
        if tool.tool_kind == "custom":
            # Codex "code mode": a freeform JavaScript `exec` tool whose `tools.*` calls run shell tools.
            return name, "custom", _codex_exec_js(tool, command)
        if name == "exec" and set(((tool.parameters or {}).get("properties") or {})) == {"input"}:
            # The same freeform tool as a backend without freeform tools sees it: one string `input`.
            return name, "function", json.dumps({"input": _codex_exec_js(tool, command)})
        return name, "function", json.dumps(_shell_arguments(tool.parameters or {}, command))
    for tool in tools:  # any function tool taking a `command`
        props = (tool.parameters or {}).get("properties") or {}
        if "command" in props or "cmd" in props:
            return tool.name, "function", json.dumps(_shell_arguments(tool.parameters, command))
    return "Bash", "function", json.dumps({"command": command})


def _shell_arguments(schema: dict, command: str) -> dict[str, Any]:
    props = schema.get("properties") or {}
    args: dict[str, Any] = {}
    for key in ("command", "cmd"):
        if key in props:
            kind = str(props[key].get("type", "string")).lower()
            args[key] = ["bash", "-lc", command] if kind == "array" else command
            break
    else:
        args["command"] = command
    if "description" in props:
        args["description"] = "Run a scripted shell command"
    for name in schema.get("required") or ():
        if name not in args and name in props:
            args[name] = example_for_schema(props[name])
    return args


def _codex_exec_js(tool, command: str) -> str:
    return f"const r = await tools.exec_command({{cmd: {json.dumps(command)}}});\ntext(r.output);\n"


def _estimate_tokens(body: Any) -> int:
    return max(1, len(json.dumps(body, ensure_ascii=False)) // 4) if body is not None else 1


def _split_text(text: str, pieces: int = 3) -> list[str]:
    """A few deltas per text, so clients see real incremental streaming."""
    if len(text) < 8:
        return [text]
    step = -(-len(text) // pieces)
    return [text[i : i + step] for i in range(0, len(text), step)]


class ScriptedBackend:
    def __init__(self, script: Script, model: str = "scripted") -> None:
        self.script = script
        self.model = model
        self._calls = 0

    @classmethod
    def from_file(cls, path: str) -> "ScriptedBackend":
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise ConfigError(f"cannot read script {path}: {exc}") from exc
        return cls(Script.from_toml(text, path))

    # -- the Backend seam -----------------------------------------------------

    def url(self, protocol: str, target: str) -> str:
        return "scripted:" + target

    async def send(self, request) -> MemoryResponse:
        """Answer a `backends.base.UpstreamRequest` from its protocol, path and JSON body
        (the proxy parses only model calls' bodies; other endpoints are answered without one)."""
        reply = self.respond(request.protocol, request.method, request.target.partition("?")[0], request.json)
        return MemoryResponse(reply.status, [(b"content-type", reply.content_type.encode())], reply.chunks, whole=not reply.stream)

    # -- requests ----------------------------------------------------------

    def respond(self, protocol: str, method: str, path: str, body: Any) -> ScriptedReply:
        """Answer one request of `protocol` at `path` (secret prefix removed)."""
        from agentwrap.protocols.endpoints import classify

        endpoint = classify(path)
        if endpoint.kind != "generate":
            return self._other(protocol, method, path, body)
        if not isinstance(body, dict):
            return self._error(protocol, "invalid_request", "request body must be a JSON object")
        summary = codec(protocol).summarize_request(body, path)
        model = summary.model or self.model
        self._calls += 1
        response_id = f"resp_scripted_{self._calls}"

        if summary.json_mode:
            events = self._text_events(json.dumps(example_for_schema(summary.json_schema or {"type": "object"})), body)
        else:
            index = summary.assistant_turns
            turns = self.script.turns
            if index < len(turns):
                turn = turns[index]
            elif turns[-1].calls_tool or turns[-1].error:
                turn = Turn(text=END_TEXT)
            else:
                turn = turns[-1]
            if turn.error:
                e = turn.error
                return self._error(protocol, str(e.get("type", "api_error")), str(e.get("message", "scripted error")), e.get("status"))
            events = self._turn_events(turn, summary, body, protocol)

        c = codec(protocol)
        if summary.stream:
            enc = c.StreamEncoder(model, response_id)
            chunks = [enc.feed(e) for e in events]
            chunks.append(enc.finish())
            return ScriptedReply(200, enc.content_type, [x for x in chunks if x], stream=True)
        doc = c.encode_response(events, model, response_id)
        return ScriptedReply(200, "application/json", [json.dumps(doc).encode()])

    def _turn_events(self, turn: Turn, summary, body: Any, protocol: str) -> list:
        events: list = [ev.MessageStart(id=f"msg_scripted_{self._calls}", model=summary.model or self.model)]
        if turn.thinking:
            events.append(ev.ThinkingDelta(turn.thinking))
        if turn.text:
            text = turn.text.replace("{last_user_text}", typed_text(summary.last_user_text) or "")
            events += [ev.TextDelta(t) for t in _split_text(text)]
        calls: list[tuple[str, str, str]] = []
        if turn.shell is not None:
            calls.append(_shell_call(summary.tools, turn.shell))
        if turn.tool is not None:
            calls.append((turn.tool, "function", json.dumps(turn.arguments or {})))
        prefix = "toolu_" if protocol == "anthropic_messages" else "call_"
        for i, (name, kind, args) in enumerate(calls):
            call_id = f"{prefix}aw{self._calls:04d}{i}"
            events.append(ev.ToolCallStart(index=i, call_id=call_id, name=name, tool_kind=kind))
            events += [ev.ToolCallArgsDelta(index=i, delta=piece) for piece in _split_text(args, 2)]
            events.append(ev.ToolCallEnd(index=i))
        out_tokens = max(1, (len(turn.text or "") + sum(len(a) for _, _, a in calls)) // 4)
        events.append(ev.Usage(input_tokens=_estimate_tokens(body), output_tokens=out_tokens))
        events.append(ev.Stop("tool_use" if calls else "end_turn"))
        return events

    def _text_events(self, text: str, body: Any) -> list:
        return [
            ev.MessageStart(id=f"msg_scripted_{self._calls}", model=self.model),
            ev.TextDelta(text),
            ev.Usage(input_tokens=_estimate_tokens(body), output_tokens=max(1, len(text) // 4)),
            ev.Stop("end_turn"),
        ]

    def _error(self, protocol: str, error_type: str, message: str, status: int | None = None) -> ScriptedReply:
        status, body = encode_error(protocol, error_type, message, status)
        return ScriptedReply(status, "application/json", [body])

    def _other(self, protocol: str, method: str, path: str, body: Any) -> ScriptedReply:
        def js(doc: Any) -> ScriptedReply:
            return ScriptedReply(200, "application/json", [json.dumps(doc).encode()])

        if path.endswith("/api/hello"):
            return ScriptedReply(200, "application/json", [b"{}"] if method != "HEAD" else [])
        if path == "/v1/messages/count_tokens":
            return js({"input_tokens": _estimate_tokens(body)})
        if path.endswith(":countTokens"):
            return js({"totalTokens": _estimate_tokens(body)})
        if method == "GET" and path.rstrip("/") in ("/v1/models", "/models", "/v1beta/models"):
            if protocol == "gemini":
                return js({"models": [{"name": f"models/{self.model}", "displayName": self.model}]})
            if protocol == "anthropic_messages":
                return js({"data": [{"type": "model", "id": self.model, "display_name": self.model}], "has_more": False})
            return js({"object": "list", "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "agentwrap"}]})
        return self._error(protocol, "not_found", f"the scripted backend does not serve {method} {path}")
