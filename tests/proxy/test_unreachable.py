"""An unreachable backend is said so within seconds, in the agent's own UI: the first failure
is a retryable 502, the agent's retry gets an error it does not retry, naming the backend."""

from __future__ import annotations

import shutil
import socket
import time

import anthropic
import pytest

from tests.conftest import http_profile
from tests.agents.test_agents_e2e import agent_args, agent_env, run_agentwrap


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed


def test_second_failure_is_not_retryable_and_names_the_backend(start_proxy, tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}"
    proxy = start_proxy("claude", http_profile(tmp_path, "anthropic_messages", url, name="local"))
    client = anthropic.Anthropic(base_url=proxy.base_url, auth_token=proxy.secret, max_retries=0)
    for expected in (502, 400):
        with pytest.raises(anthropic.APIStatusError) as err:
            client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
        assert err.value.status_code == expected
    assert "'local'" in str(err.value) and url in str(err.value) and "unreachable" in str(err.value)


@pytest.mark.agents
@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_the_real_agent_tells_the_user_in_seconds(agent, tmp_path, isolated_env):
    assert shutil.which(agent), f"{agent} missing: run scripts/install-agents.sh"
    protocol = {"claude": "anthropic_messages", "codex": "openai_responses", "gemini": "gemini"}[agent]
    url = f"http://127.0.0.1:{_closed_port()}" + ("/v1" if agent == "codex" else "")
    profile = http_profile(tmp_path, protocol, url, name="local")
    work = tmp_path / "work"
    work.mkdir()
    started = time.monotonic()
    proc = run_agentwrap([agent, "--profile", str(profile), "--", *agent_args(agent, "text")], cwd=work,
                         env=agent_env(agent, isolated_env), timeout=90)
    took = time.monotonic() - started
    out = proc.stdout + proc.stderr
    assert "is unreachable" in out and "'local'" in out, out[-3000:]
    assert took < 45, f"the user waited {took:.0f} s"
