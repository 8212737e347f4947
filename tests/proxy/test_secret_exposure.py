"""The session secret never appears where another local user can read it.

Any user on the machine can read every process's command line
(`/proc/PID/cmdline`); only the owner can read its environment. So the
secret that guards the proxy may travel in the agent's environment, never in
its argv. Checked on the real agents' process trees while a request is in
flight.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time

import psutil
import pytest

from tests.conftest import http_profile
from tests.agents.test_agents_e2e import PROTOCOL, UP_KEY, agent_args, agent_env

pytestmark = pytest.mark.agents


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _cmdlines(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            with open(f"/proc/{p.pid}/cmdline", "rb") as f:
                out.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass
    return out


def _secrets_in_environ(procs: list[psutil.Process]) -> set[str]:
    found = set()
    for p in procs:
        try:
            env = p.environ()
        except psutil.Error:
            continue
        for var in ("AGENTWRAP_CODEX_SECRET", "AGENTWRAP_CODEX_KEY", "ANTHROPIC_AUTH_TOKEN", "GEMINI_API_KEY"):
            if env.get(var):
                found.add(env[var])
    return found


@pytest.mark.parametrize("agent", ["codex", "claude", "gemini"])
def test_secret_is_in_no_command_line_of_the_agent_tree(agent, upstream_factory, tmp_path, isolated_env):
    assert shutil.which(agent), f"{agent} missing: run scripts/install-agents.sh"
    up = upstream_factory('[[turns]]\ntext = "held until the test has looked"\n')
    up.gate = threading.Event()  # the stream's second chunk waits: the agent is mid-request
    base = up.url + ("/v1" if agent == "codex" else "")
    profile = http_profile(tmp_path, PROTOCOL[agent], base, api_key_env="UP_KEY")
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentwrap", agent, "--profile", str(profile), "--", *agent_args(agent, "text")],
        cwd=work, env=agent_env(agent, isolated_env), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not up.model_requests() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert up.model_requests(), "the agent never reached the upstream"
        procs = _tree(proc.pid)
        secrets = _secrets_in_environ(procs)
        assert secrets, "no process of the tree holds the session secret in its environment"
        for line in _cmdlines(procs):
            for secret in secrets:
                assert secret not in line, f"the session secret is readable in a command line: {line[:300]}"
        for r in up.requests:
            assert "x-agentwrap-secret" not in r.headers
            assert not any(s in v for v in r.headers.values() for s in secrets)
    finally:
        up.gate.set()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert "held until the test has looked" in out
    assert UP_KEY not in out
