"""The guards, as an addon: tool-call loops on the request, content loops and tool-call
repair on the answer, each as the session's profile says (`[guards]`, all on by default).

- `request(flow)`: the tool-loop guard decides from the conversation the agent
  sent (`guards/tool_loop.py`). "steer": the model's copy of the request gets a
  note after the newest tool results (`upstream_request`, on the wire body of
  whichever leg is sent, so the agent's own request and its capture stay as
  they were); "answer": agentwrap answers itself with an assistant message and
  no tool call, ending the turn (streamed if the request streamed). Only a
  request whose conversation ends with tool results is decoded, and only its
  tail (enough messages to count `max_repeats` + 1 steps), so ordinary turns
  pay a few dict lookups.
- `stream(flow)`: the stream filters for a model call's answer, in order:
  `ToolRepair` (only when the request declared function tools), then
  `LoopGuard`. The proxy runs them on translated streams, through the
  pass-through tap, and on whole answers.
- `done(flow)`: what the filters did becomes the flow's notes (capture's
  `guard` items; the run summary counts them as guard actions).

A guard that raises is our bug: the addon chain reports it and the request
goes on unguarded.
"""

from __future__ import annotations

import hashlib
import json

from agentwrap.proxy import local
from agentwrap.proxy.flow import Flow, ProxyResponse

__all__ = ["Guards", "GUARD_NAMES"]

GUARD_NAMES = frozenset({"loop", "tool_loop", "tool_repair"})
_CHARS_PER_TOKEN = 4

# Where each protocol keeps its conversation, and how its last item says "tool results".
_CONVERSATION = {"anthropic_messages": "messages", "openai_chat": "messages", "openai_responses": "input", "gemini": "contents"}


def _agents_own(item) -> bool:
    """A conversation item the agent itself inserted, not the user: Claude Code's `role:
    "system"` messages ("The user hasn't heard from you in a while", 2.1.x), Codex's
    mid-session `developer` messages. They neither end a tool-call run nor reset it."""
    return isinstance(item, dict) and item.get("role") in ("system", "developer")


def _conversation(protocol: str, body: dict) -> list | None:
    items = body.get(_CONVERSATION.get(protocol, ""))
    if protocol == "gemini" and not isinstance(items, list) and isinstance(body.get("request"), dict):
        items = body["request"].get("contents")  # Code Assist's envelope
    return items if isinstance(items, list) else None


def _ends_with_tool_results(protocol: str, body: dict) -> bool:
    items = _conversation(protocol, body)
    while items and _agents_own(items[-1]):
        items = items[:-1]
    if not items or not isinstance(items[-1], dict):
        return False
    last = items[-1]
    if protocol == "anthropic_messages":
        content = last.get("content")
        return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
    if protocol == "openai_chat":
        return last.get("role") == "tool"
    if protocol == "openai_responses":
        return str(last.get("type", "")).endswith("_call_output")
    parts = last.get("parts")
    return isinstance(parts, list) and any(isinstance(p, dict) and "functionResponse" in p for p in parts)


def _tail(protocol: str, body: dict, keep: int) -> dict:
    """`body` with only the last `keep` items of its conversation, the agent's own inserts left
    out (a shallow copy)."""
    key = _CONVERSATION[protocol]
    if protocol == "gemini" and key not in body and isinstance(body.get("request"), dict):
        return {**body, "request": _tail(protocol, body["request"], keep)}
    items = body.get(key)
    if not isinstance(items, list):
        return body
    return {**body, key: [i for i in items[-keep * 2:] if not _agents_own(i)][-keep:]}


class Guards:
    """See the module docstring. `routes` is the session's (`routes.profile.guards` may change
    with `::profile`)."""

    def __init__(self, routes) -> None:
        self.routes = routes
        self._steer: dict[int, str] = {}  # flow id -> the note for the model

    # -- the request: tool-call loops --------------------------------------------------------

    def request(self, flow: Flow) -> None:
        cfg = self.routes.profile.guards.tool_loop
        if not cfg.enabled or flow.reply is not None or flow.parsed is None or flow.endpoint is None:
            return
        if flow.endpoint.kind != "generate" or not _ends_with_tool_results(flow.protocol, flow.parsed):
            return
        from agentwrap.errors import RequestError
        from agentwrap.guards.tool_loop import ToolLoopGuard
        from agentwrap.protocols.codec import codec

        guard = ToolLoopGuard(cfg.max_repeats)
        try:
            req = codec(flow.protocol).decode_request(_tail(flow.protocol, flow.parsed, 4 * (cfg.max_repeats + 2)), flow.path)
        except RequestError:
            return  # the backend will say what is wrong with it
        verdict = guard.decide(req)
        if verdict.action == "pass":
            return
        flow.note(verdict.guard_note(cfg.max_repeats).as_item())
        if verdict.action == "steer":
            self._steer[flow.xid] = verdict.note
        else:
            flow.reply = self._answer(flow, verdict.note)

    def upstream_request(self, flow: Flow, leg) -> None:
        note = self._steer.get(flow.xid)
        if note is not None and isinstance(leg.json, dict):
            from agentwrap.protocols.notes import append_user_note

            leg.json = append_user_note(leg.protocol, leg.json, note)

    def _answer(self, flow: Flow, text: str) -> ProxyResponse:
        from agentwrap.guards.tool_loop import answer_events
        from agentwrap.protocols.codec import codec

        c = codec(flow.protocol)
        stream = flow.endpoint.stream if flow.endpoint.stream is not None else bool(flow.parsed.get("stream"))
        model = flow.model or "agentwrap"
        events = answer_events(text, model)
        response_id = f"msg_agentwrap_loop_{flow.xid}"
        if stream:
            enc = c.StreamEncoder(model, response_id)
            data = b"".join(enc.feed(e) for e in events) + enc.finish()
            return ProxyResponse(200, [(b"content-type", enc.content_type.encode()), (b"cache-control", b"no-cache")], data)
        return local.json_response(200, json.dumps(c.encode_response(events, model, response_id)).encode())

    # -- the answer: content loops and tool-call repair ----------------------------------------

    def stream(self, flow: Flow) -> list:
        """The stream filters for this flow's answer (none for anything but a model call)."""
        if flow.parsed is None or flow.endpoint is None or flow.endpoint.kind != "generate":
            return []
        guards = self.routes.profile.guards
        filters: list = []
        repair = guards.tool_repair
        if repair.enabled:
            from agentwrap.errors import RequestError

            try:
                tools = tuple(t for t in flow.summary.tools if t.tool_kind == "function")
            except RequestError:
                tools = ()
            if tools:
                from agentwrap.guards.repair.filter import ToolRepair

                seed = hashlib.sha1(b"%d:%b" % (len(flow.body), flow.body[-4096:])).hexdigest()[:12]
                filters.append(ToolRepair(tools, flow.protocol, repair_arguments=repair.arguments, repair_names=repair.names,
                                          extract_text_calls=repair.text_calls, id_seed=seed))
        keys = self.routes.keys
        if keys:  # not a setting: a key agentwrap holds never reaches the agent, however the model splits it
            from agentwrap.guards.keys import KeyGuard

            filters.insert(0, KeyGuard(keys))
        loop = guards.loop
        if loop.enabled:
            from agentwrap.guards.loop_guard import LoopGuard
            from agentwrap.protocols.limits import output_limits

            limit = next(iter(output_limits(flow.protocol, flow.parsed).values()), None)
            filters.append(LoopGuard(sensitivity=loop.sensitivity, action=loop.action,
                                     max_output_chars=limit * _CHARS_PER_TOKEN if limit else None))
        return filters

    def done(self, flow: Flow) -> None:
        self._steer.pop(flow.xid, None)
        for note in flow.take_guard_notes():
            flow.note(note.as_item() if hasattr(note, "as_item") else note)
