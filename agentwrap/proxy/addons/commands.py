"""In-chat commands (`::help`, `::status`, `::model(NAME)`, ...; `!/` too) as an addon.

Parsing and the replies' text stay pure in `guards/commands.py`; this addon
applies them to the session: it answers the request itself (`flow.reply`,
an assistant message in the agent's protocol, no backend contacted) and
changes the session's routes (overrides, `::profile`, `::reset`). Only a
request whose raw body holds `::` or `!/` is looked at (a byte search), so ordinary
requests pay nothing.
"""

from __future__ import annotations

import json

from agentwrap.errors import ConfigError, RequestError
from agentwrap.guards.commands import CommandContext, apply_command, may_contain_command, parse_command, reply_events
from agentwrap.protocols import codec as wire
from agentwrap.proxy import local
from agentwrap.proxy.flow import Flow, ProxyResponse
from agentwrap.proxy.routes import SessionRoutes

__all__ = ["Commands"]


class Commands:
    def __init__(self, routes: SessionRoutes, stats=None) -> None:
        self.routes = routes
        self.stats = stats  # the session's `Stats`: tokens so far, for `::status`
        self.last_backend: str | None = None  # the last request's route, for `::status`
        self.last_model: str | None = None

    def request(self, flow: Flow) -> None:
        if flow.reply is not None or flow.parsed is None or not may_contain_command(flow.body):
            return
        try:
            summary = flow.summary
        except RequestError as exc:
            flow.reply = local.error(flow.protocol, "invalid_request", f"agentwrap: {exc}")
            return
        # Gemini CLI asks a routing question in JSON mode before each turn, with the user's text
        # in it: that is no place for a command's answer (it must parse as the schema says).
        command = None if summary.json_mode else parse_command(summary.last_user_text)
        if command is not None:
            flow.reply = self._answer(flow, command, summary)

    def route(self, flow: Flow) -> None:
        if flow.decision is not None and not flow.attempts:
            self.last_backend, self.last_model = flow.decision.backend, flow.decision.model or flow.model

    def _answer(self, flow: Flow, command, summary) -> ProxyResponse:
        routes = self.routes
        names = routes.services.profile_names
        tokens = (self.stats.tokens if self.stats is not None else None) or {}
        ctx = CommandContext(
            profile=routes.profile.name,
            backend=self.last_backend,
            model=self.last_model,
            overrides=routes.overrides,
            input_tokens=tokens.get("input_tokens", 0),
            output_tokens=tokens.get("output_tokens", 0),
            requests=flow.xid,
            backends=tuple(routes.profile.backends),
            profiles=names() if routes.can_switch and names is not None else (),
            models=tuple(m for b in routes.profile.backends.values() for m in (b.models or {})),
        )
        text, overrides = apply_command(command, ctx)
        if overrides.profile and overrides.profile != routes.overrides.profile and routes.can_switch:
            try:
                routes.switch(overrides.profile)
            except ConfigError as exc:
                text, overrides = f"agentwrap: cannot switch to profile {overrides.profile!r}: {exc}", routes.overrides
        elif command.name == "reset":
            routes.reset()
        routes.overrides = overrides
        flow.note({"guard": "command", "command": command.name, "arg": command.arg})
        c = wire.codec(flow.protocol)
        model = summary.model or flow.model or "agentwrap"
        events = reply_events(text, model)
        response_id = f"msg_agentwrap_{flow.xid}"
        if summary.stream:
            enc = c.StreamEncoder(model, response_id)
            data = b"".join(enc.feed(e) for e in events) + enc.finish()
            return ProxyResponse(200, [(b"content-type", enc.content_type.encode()), (b"cache-control", b"no-cache")], data)
        doc = c.encode_response(events, model, response_id)
        return local.json_response(200, json.dumps(doc).encode())
