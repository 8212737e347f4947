"""Addons: ordered hook objects on a `Flow` (after mitmproxy's addon chain).

Everything optional about a request is an addon: counting (`stats.Stats`),
in-chat commands (`commands.Commands`), backend output-token caps
(`output_cap.OutputCap`), capture (`capture.recorder.Capture`), and later the
stream guards. An addon implements any of these hooks; all are sync, cheap
and do no I/O (capture's own I/O stays on its writer thread):

- `request(flow)`: the agent's request arrived (every request, also one without
  the secret: then `flow.reply` already holds agentwrap's 401 and an addon only
  observes). May answer it by setting `flow.reply`.
- `route(flow)`: `flow.decision` was made; called again after each attempt at a
  backend, whose (attempt, outcome, verdict) is then `flow.attempts[-1]` and
  whose response is `flow.response`.
- `upstream_request(flow, leg)`: `leg` (an `attempt.Leg`) is about to be sent; an
  addon may still change `leg.json` (the body follows it) or `leg.headers`.
- `upstream_response(flow, status, headers)`: the backend's response head.
- `chunk(flow, data)`: one upstream body piece, as it arrives.
- `agent_chunk(flow, data)`: a piece the agent gets that the upstream did not send
  as is (a translated event, an error event agentwrap appends).
- `error(flow, kind, message)`: something failed (`flow` is None for the session).
- `stream(flow) -> list[StreamFilter]`: a backend answered a model call; stream
  filters (guards/base.py) for its answer, in order (streamed or whole).
- `agent_head(flow)`: from here the agent's response is agentwrap's own bytes,
  not the upstream's (a translated stream, a pass-through stream a guard
  re-encoded): `flow.response` holds its head.
- `done(flow)`: the exchange is over (for a stream: after its last piece).

Dispatch is by per-hook lists built when the chain is built (and again by
`add`), not a `getattr` per call: a hook nobody implements costs an empty
loop, and the relay reads `chunk_hooks` / `agent_chunk_hooks` once per flow.
An addon that raises is our bug: the chain reports it once per flow and hook
through the other addons' `error` hooks (kind "addon") and carries on.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any, Protocol

__all__ = ["Addon", "AddonChain", "HOOKS"]

HOOKS = ("request", "route", "upstream_request", "upstream_response", "chunk", "agent_chunk", "error", "stream", "agent_head",
         "done")


class Addon(Protocol):
    """Any object with some of the methods named in HOOKS (see the module docstring)."""


Hook = Callable[..., Any]


class AddonChain:
    """The session's addons, in order; `chain.request(flow)` etc. run each hook in that order."""

    def __init__(self, addons: Iterable[object] = ()) -> None:
        self.addons: list[object] = list(addons)
        self._reporting = False
        self._build()

    def add(self, addon: object) -> None:
        """Append an addon (before the proxy starts serving; a flow already under way keeps its lists)."""
        self.addons = [*self.addons, addon]
        self._build()

    def _build(self) -> None:
        hooks = {name: tuple(fn for a in self.addons if callable(fn := getattr(a, name, None))) for name in HOOKS}
        self._request, self._route, self._upstream_request = hooks["request"], hooks["route"], hooks["upstream_request"]
        self._upstream_response, self._error, self._done = hooks["upstream_response"], hooks["error"], hooks["done"]
        self._stream, self._agent_head = hooks["stream"], hooks["agent_head"]
        # The relay calls these itself, per piece (see relay.py).
        self.chunk_hooks = hooks["chunk"]
        self.agent_chunk_hooks = hooks["agent_chunk"]

    # -- hooks ------------------------------------------------------------------------

    def _run(self, hooks: tuple[Hook, ...], flow, *args: Any) -> None:
        for fn in hooks:
            try:
                fn(flow, *args)
            except Exception as exc:
                self.failed(fn, flow, exc)

    def request(self, flow) -> None:
        self._run(self._request, flow)

    def route(self, flow) -> None:
        self._run(self._route, flow)

    def upstream_request(self, flow, leg) -> None:
        self._run(self._upstream_request, flow, leg)

    def upstream_response(self, flow, status: int, headers) -> None:
        self._run(self._upstream_response, flow, status, headers)

    def chunk(self, flow, data: bytes) -> None:
        """One upstream body piece outside the relay (a whole body read at once)."""
        self._run(self.chunk_hooks, flow, data)

    def error(self, flow, kind: str, message: str) -> None:
        self._run(self._error, flow, kind, message)

    def stream(self, flow) -> list:
        if not self._stream:
            return []
        filters: list = []
        for fn in self._stream:
            try:
                filters += fn(flow) or ()
            except Exception as exc:
                self.failed(fn, flow, exc)
        return filters

    def agent_head(self, flow) -> None:
        self._run(self._agent_head, flow)

    def done(self, flow) -> None:
        self._run(self._done, flow)

    # -- failures ---------------------------------------------------------------------

    def failed(self, fn: Hook, flow, exc: Exception) -> None:
        """`fn` (a hook of one addon) raised: report it through the other addons, once per flow and hook."""
        if flow is not None:
            if flow._failed is None:
                flow._failed = set()
            elif fn in flow._failed:
                return
            flow._failed.add(fn)
        if os.environ.get("AGENTWRAP_DEBUG") == "1":
            traceback.print_exception(exc, file=sys.stderr)
        if self._reporting:  # an error hook raised while reporting another failure
            return
        owner = getattr(fn, "__self__", None)
        name = f"{type(owner).__name__}.{getattr(fn, '__name__', 'hook')}"
        message = f"addon {name} raised {type(exc).__name__}: {exc}"
        self._reporting = True
        try:
            for other in self._error:
                if getattr(other, "__self__", None) is owner:
                    continue
                try:
                    other(flow, "addon", message)
                except Exception:
                    pass
        finally:
            self._reporting = False
