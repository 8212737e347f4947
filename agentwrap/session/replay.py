"""`agentwrap replay`: re-run a recorded session with the recording as its only backend.

Every answer the agent got is served from the record, whoever made it: a
backend, a translation, a guard's rewrite or cut, or agentwrap itself (an
in-chat command such as `::status`, the tool-loop guard's own answer, an
error). The replay's proxy runs no in-chat commands and no guards, so each
request reaches the replay backend and the agent gets the recorded bytes
(a command is not answered again: its answer would name the replay's profile,
and `::profile` would leave the recording). Only a request the proxy refuses
at the door (without the session secret, or unreadable: the same rule as
`Flow.open`) is left to the replay's proxy, which refuses it the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from agentwrap.agents import AGENTS
from agentwrap.errors import ConfigError
from agentwrap.session import SessionOptions, SessionResult, run_session

__all__ = ["ReplayResult", "run_replay"]


@dataclass(slots=True)
class ReplayResult:
    session: SessionResult
    served: int
    recorded: int
    divergences: list[str]
    unused: list[str]

    @property
    def diverged(self) -> bool:
        return bool(self.divergences or self.unused)


def _refused_at_the_door(ex, protocol: str) -> bool:
    """True for a recorded request agentwrap refused before routing it or looking at its
    content: one without the session secret (only the agent has it), or one that
    `Flow.open` cannot read."""
    from agentwrap.errors import RequestError
    from agentwrap.proxy.flow import Flow

    if ex.route is not None or ex.guards:
        return False
    if ex.status == 401:
        return True
    flow = Flow(0, ex.request.method.encode("latin-1"), ex.path.encode("latin-1"), [], ex.request.body.bytes)
    try:
        flow.open(ex.path.split("?", 1)[0], protocol)
    except RequestError:
        return True
    return False


def run_replay(
    bundle_path: str,
    *,
    extra_args: list[str] | None = None,
    cwd: str | None = None,
    quiet: bool = False,
    capture_dir: str | None = None,
    capture: bool = True,
    env: Mapping[str, str] | None = None,
) -> ReplayResult:
    """Re-run a recorded session offline: same agent, same args (plus `extra_args`), same
    cwd unless `cwd`, with the recorded responses served instead of any backend."""
    from agentwrap.backends.replay import RecordedExchange, ReplayBackend
    from agentwrap.capture.reader import read_bundle

    bundle = read_bundle(bundle_path)
    header = bundle.header
    agent = header.get("agent")
    if agent not in AGENTS:
        raise ConfigError(f"{bundle_path}: the recorded agent {agent!r} is not one agentwrap runs")
    argv = list(header.get("argv") or [agent])
    recorded = []
    for ex in bundle.exchanges:
        if ex.request is None or not ex.complete or ex.status is None or _refused_at_the_door(ex, AGENTS[agent].protocol):
            continue
        response = ex.agent_response or ex.upstream_response
        recorded.append(
            RecordedExchange(
                index=len(recorded), method=ex.request.method, path=ex.path, body=ex.request.body.bytes,
                status=ex.status, headers=list(response.headers) if response else [], chunks=ex.agent_stream(),
            )
        )
    backend = ReplayBackend(recorded)
    opts = SessionOptions(
        agent=agent,
        args=[*argv[1:], *(extra_args or [])],
        quiet=quiet,
        capture_dir=capture_dir,
        capture=capture,
        cwd=cwd or header.get("cwd"),
        replay=backend,
        replay_of=os.path.abspath(bundle_path),
    )
    result = run_session(opts, env)
    return ReplayResult(
        session=result,
        served=backend.served,
        recorded=len(recorded),
        divergences=[str(d) for d in backend.divergences],
        unused=[f"recorded exchange {ex.index + 1} ({ex.method} {ex.path}) was never requested" for ex in backend.unused()],
    )
