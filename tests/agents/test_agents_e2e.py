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
    # what the user typed, not what the agent wrapped around it (Gemini CLI's session context,
    # Claude Code's system reminders)
    assert "You said: say hello\n" in proc.stdout and "session_context" not in proc.stdout, detail


def test_real_claude_routes_by_model_and_answers_commands(upstream_factory, tmp_path, isolated_env):
    """Claude Code through a two-backend profile: its requests split by model glob, and an
    in-chat command is answered by agentwrap without reaching either backend."""
    assert shutil.which("claude"), "claude missing: run scripts/install-agents.sh"
    small = upstream_factory('[[turns]]\ntext = "from the small backend"\n')
    big = upstream_factory('[[turns]]\ntext = "from the big backend"\n')
    profile = tmp_path / "split.toml"
    profile.write_text(f"""
[backends.small]
protocol = "anthropic_messages"
base_url = "{small.url}"
api_key_env = "UP_KEY"

[backends.big]
protocol = "anthropic_messages"
base_url = "{big.url}"
api_key_env = "UP_KEY"

[[routes]]
when = {{ model = "*haiku*" }}
backend = "small"

[[routes]]
backend = "big"
""")
    work = tmp_path / "work"
    work.mkdir()
    env = agent_env("claude", isolated_env)
    runs = {
        "haiku": ["-p", "hi", "--model", "claude-haiku-4-5"],
        "default": ["-p", "hi", "--model", "claude-sonnet-4-5"],
        "status": ["-p", "!/status"],
    }
    out = {}
    for name, args in runs.items():
        proc = run_agentwrap(["claude", "--profile", str(profile), "--", *args], cwd=work, env=env)
        assert proc.returncode == 0, f"{name}: {proc.stderr[-2000:]}"
        out[name] = proc.stdout
    assert "from the small backend" in out["haiku"]
    assert "from the big backend" in out["default"]
    assert "agentwrap status" in out["status"] and "split" in out["status"]
    assert {r.json["model"] for r in small.model_requests()} == {"claude-haiku-4-5"}
    assert {r.json["model"] for r in big.model_requests()} == {"claude-sonnet-4-5"}
