"""The real agent CLIs, run through `agentwrap` against a scripted upstream.

The pinned agents come from scripts/install-agents.sh (into .agents/). These
tests fail, not skip, when an agent is missing: CI must have them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import http_profile

pytestmark = pytest.mark.agents

UP_KEY = "e2e-upstream-key-42"
TEXT = "Scripted hello from the e2e upstream."
DONE = "Created made.txt through the shell tool."
SHELL_SCRIPT = f'[[turns]]\nshell = "echo agentwrap-e2e > made.txt"\n\n[[turns]]\ntext = "{DONE}"\n'
TEXT_SCRIPT = f'[[turns]]\ntext = "{TEXT}"\n'

PROTOCOL = {"claude": "anthropic_messages", "codex": "openai_responses", "gemini": "gemini"}


def agent_args(agent: str, scenario: str) -> list[str]:
    prompt = "say hello" if scenario == "text" else "create a file named made.txt"
    if agent == "claude":
        args = ["-p", prompt]
        return args + (["--allowedTools", "Bash", "Write"] if scenario == "shell" else [])
    if agent == "codex":
        return [
            "-c", "analytics.enabled=false",
            "-c", "features.plugins=false",
            "exec", "--skip-git-repo-check", "-s", "workspace-write", prompt,
        ]
    args = ["-p", prompt, "--skip-trust"]
    return args + (["--yolo"] if scenario == "shell" else [])


def agent_env(agent: str, home: Path) -> dict[str, str]:
    env = {**os.environ, "UP_KEY": UP_KEY}
    if agent == "claude":
        env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1"
    if agent == "gemini":
        settings = home / ".gemini" / "settings.json"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps({"privacy": {"usageStatisticsEnabled": False}}))
    return env


def run_agentwrap(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agentwrap", *args],
        cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_agent_is_installed(agent):
    assert shutil.which(agent), f"{agent} missing: run scripts/install-agents.sh"


@pytest.mark.parametrize("scenario", ["text", "shell"])
@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_real_agent_through_agentwrap(agent, scenario, upstream_factory, tmp_path, isolated_env):
    assert shutil.which(agent), f"{agent} missing: run scripts/install-agents.sh"
    up = upstream_factory(TEXT_SCRIPT if scenario == "text" else SHELL_SCRIPT)
    base = up.url + ("/v1" if agent == "codex" else "")
    profile = http_profile(tmp_path, PROTOCOL[agent], base, api_key_env="UP_KEY")
    work = tmp_path / "work"
    work.mkdir()
    env = agent_env(agent, isolated_env)

    proc = run_agentwrap([agent, "--profile", str(profile), "--", *agent_args(agent, scenario)], cwd=work, env=env)
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, detail

    reqs = up.model_requests()
    assert reqs, "the agent never reached the upstream through the proxy\n" + detail
    for r in reqs:
        assert UP_KEY in (r.headers.get("x-api-key", "") + r.headers.get("authorization", "") + r.headers.get("x-goog-api-key", ""))
    assert "agentwrap:" in proc.stderr and "exited 0" in proc.stderr, detail

    if scenario == "text":
        assert TEXT in proc.stdout, detail
    else:
        made = work / "made.txt"
        assert made.is_file(), "the agent did not run the shell tool\n" + detail
        assert made.read_text().strip() == "agentwrap-e2e"
        assert DONE in proc.stdout, detail
        assert len(reqs) >= 2  # the tool result went back for the second turn


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_real_agent_on_the_offline_profile(agent, tmp_path, isolated_env):
    """The built-in `offline` profile: no key, no upstream at all."""
    work = tmp_path / "work"
    work.mkdir()
    env = agent_env(agent, isolated_env)
    proc = run_agentwrap([agent, "--profile", "offline", "--", *agent_args(agent, "text")], cwd=work, env=env)
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, detail
    assert "agentwrap's offline backend" in proc.stdout, detail
    assert "say hello" in proc.stdout, detail
