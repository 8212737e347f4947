"""Run one agentwrap proxy in a process of its own, for tests that measure or starve it.

    python -m tests.reliability.proxy_proc AGENT PROFILE [NOFILE]

Builds the proxy the way a session does (`resolve_plan`, `bind_proxy`), with the
soft descriptor limit set to NOFILE when given (1024 is the usual default),
prints one JSON line (`port`, `secret`, `pid`) on stdout and serves until its
stdin closes. Whatever the proxy prints goes to this process's stderr, where
the test reads it: that is what would land in the agent's terminal.
"""

from __future__ import annotations

import json
import os
import resource
import sys


def main() -> None:
    agent, profile = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[3]), hard))
    from agentwrap.agents import AGENTS
    from agentwrap.session import bind_proxy, resolve_plan

    spec = AGENTS[agent]
    env = dict(os.environ)
    bound = bind_proxy(spec, resolve_plan(spec, profile, env), env)
    bound.server.start()
    print(json.dumps({"port": bound.server.port, "secret": bound.secret, "pid": os.getpid()}), flush=True)
    sys.stdin.read()
    bound.server.stop(grace_s=0.5)


if __name__ == "__main__":
    main()
