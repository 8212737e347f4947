"""The session's counts (the run summary and the bundle footer read them), as an addon.

What counts as an error: every response with a status of 400 or more that
the agent got, or would have got from an attempt given up for a fallback
(counted per attempt in `route`, and in `done` for an answer agentwrap gave
before any attempt); and every error reported once the flow's response was
decided (a stream cut after its head went out: its status cannot show it) or
for no flow at all (the server's own failures). Errors reported while an
attempt is still under way end in an error response and count as that. A
stream the agent closed before its end (`agent_left`) is counted apart: the
agent's choice (a user interrupting a turn), not a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentwrap.errors import AGENT_LEFT, NOT_FAILURES

__all__ = ["Stats"]

_GUARDS = frozenset({"loop", "tool_loop", "tool_repair"})
_NOT_ACTIONS = frozenset({"pass", "failed", "error"})  # a record of a guard, not something it changed


@dataclass(slots=True)
class Stats:
    requests: int = 0
    errors: int = 0
    unauthorized: int = 0
    failovers: int = 0
    commands: int = 0
    agent_left: int = 0  # streams the agent closed before their end
    by_backend: dict[str, int] = field(default_factory=dict)
    guard_actions: dict[str, int] = field(default_factory=dict)  # guard -> times it acted (cut, repaired, ...)

    def request(self, flow) -> None:
        self.requests += 1
        if not flow.authorized:
            self.unauthorized += 1

    def route(self, flow) -> None:
        if not flow.attempts:
            return
        attempt, _, verdict = flow.attempts[-1]
        self.by_backend[attempt.backend] = self.by_backend.get(attempt.backend, 0) + 1
        if verdict.action == "retry" or verdict.action == "failover":
            self.failovers += 1
        if flow.response is not None and flow.response.status >= 400:
            self.errors += 1

    def error(self, flow, kind: str, message: str) -> None:
        if kind == AGENT_LEFT:
            self.agent_left += 1
        if kind not in NOT_FAILURES and (flow is None or flow.response is not None):
            self.errors += 1

    def done(self, flow) -> None:
        response = flow.response
        if not flow.attempts and response is not None and response.status >= 400:
            self.errors += 1
        for note in flow.notes:
            guard = note.get("guard")
            if guard == "command":
                self.commands += 1
            elif guard in _GUARDS and note.get("action") not in _NOT_ACTIONS:
                self.guard_actions[guard] = self.guard_actions.get(guard, 0) + 1
