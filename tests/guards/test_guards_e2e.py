"""The guards with the real agents: a looping answer is cut, a repeated tool call is
broken, broken tool calls are repaired, each through agentwrap on the agent's native
protocol and on a translated (OpenAI Chat) backend; and the same scripts fail without
agentwrap or with the guard switched off, so the tests show the guard doing the work."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.guard_upstream import GuardUpstream, call_events, loop_events, mistyped_args, python_args, shell_call, text_events
from tests.agents.test_agents_e2e import agent_env, run_agentwrap

pytestmark = pytest.mark.agents

NOTICE = "agentwrap stopped a repetition loop"
UNIT = "I will check the configuration file once more to be sure.\n"
DONE = "All done: the file is there."
PROTOCOL = {"claude": "anthropic_messages", "codex": "openai_responses", "gemini": "gemini"}
ROUTES = ["native", "openai_chat"]


def agent_args(agent: str, prompt: str, *, tools: bool = False) -> list[str]:
    if agent == "claude":
        return ["-p", prompt, *(["--allowedTools", "Bash", "Write"] if tools else [])]
    if agent == "codex":
        # a classic-tools model: its shell tool takes JSON arguments (the default model's is freeform)
        return ["-c", "analytics.enabled=false", "-c", "features.plugins=false", "-m", "gpt-5.5",
                "exec", "--skip-git-repo-check", "-s", "workspace-write", prompt]
    return ["-p", prompt, "--skip-trust", *(["--yolo"] if tools else [])]


def profile_for(tmp_path: Path, agent: str, route: str, url: str, extra: str = "") -> Path:
    protocol = PROTOCOL[agent] if route == "native" else route
    base = url + ("/v1" if protocol.startswith("openai") else "")
    path = tmp_path / f"{agent}-{route}.toml"
    path.write_text(f'[backends.up]\nprotocol = "{protocol}"\nbase_url = "{base}"\napi_key_env = "UP_KEY"\n{extra}')
    return path


def run(agent: str, profile: Path, args: list[str], tmp_path: Path, home: Path) -> subprocess.CompletedProcess:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = {**agent_env(agent, home), "UP_KEY": "guard-upstream-key"}
    if agent == "gemini":
        # Gemini CLI has a loop detector of its own (10 repeats of a 50-character chunk end
        # the stream, 0.61): off here, so that what the test sees is agentwrap's.
        settings = home / ".gemini" / "settings.json"
        settings.write_text(json.dumps({"privacy": {"usageStatisticsEnabled": False}, "model": {"disableLoopDetection": True}}))
    return run_agentwrap([agent, "--profile", str(profile), "--", *args], cwd=work, env=env, timeout=180)


def detail(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"


# -- content loops ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_a_looping_answer_is_cut_and_the_agent_carries_on(agent, route, tmp_path, isolated_env):
    assert shutil.which(agent), f"{agent} missing: run scripts/install-agents.sh"

    def scenario(req):
        return loop_events("Let me look at this.\n", UNIT, 400)

    with GuardUpstream(scenario, chunk_delay_s=0.004) as up:
        proc = run(agent, profile_for(tmp_path, agent, route, up.url), agent_args(agent, "check the config"), tmp_path, isolated_env)
        assert proc.returncode == 0, detail(proc)
        assert NOTICE in proc.stdout, detail(proc)
        assert UNIT.strip() in proc.stdout
        looped = [a for a in up.answers if a.chunks > 300]
        assert looped and all(not a.complete for a in looped), "the upstream stream was read to the end"
        assert all(a.written < a.chunks // 2 for a in looped), [(a.written, a.chunks) for a in looped]
    assert re.search(r"1 guard action", proc.stderr), detail(proc)


# -- tool-call loops -----------------------------------------------------------------------------------------


def test_a_repeated_tool_call_is_broken_for_claude(tmp_path, isolated_env):
    """The model calls the same command with the same result forever: after 4 identical
    call+result pairs the model is told so; when it repeats anyway, agentwrap answers."""
    assert shutil.which("claude"), "claude missing: run scripts/install-agents.sh"

    ids = itertools.count(1)

    def scenario(req):
        name, kind, args = shell_call(req, "cat does-not-exist.txt")
        return call_events(name, kind, args, call_id=f"toolu_guard_{next(ids)}")

    with GuardUpstream(scenario) as up:
        proc = run("claude", profile_for(tmp_path, "claude", "native", up.url),
                   agent_args("claude", "read the file", tools=True), tmp_path, isolated_env)
        bodies = up.model_bodies()
    assert proc.returncode == 0, detail(proc)
    assert "agentwrap stopped a tool-call loop" in proc.stdout and "5 times in a row" in proc.stdout, detail(proc)
    steered = [b for b in bodies if "same arguments 4 times in a row" in json.dumps(b)]
    assert len(steered) == 1, "the model did not get the steering note once"
    assert len(bodies) == 5, f"{len(bodies)} model requests reached the model: 4 calls, the steered one, then agentwrap's answer"
    assert "2 guard actions (tool-call loop 2)" in proc.stderr, detail(proc)


# -- tool-call repair -----------------------------------------------------------------------------------------


def _repair_scenario(kind_of_break: str):
    def scenario(req):
        if req.turn == 0:
            name, kind, args = shell_call(req, "echo repaired > made.txt")
            if kind_of_break == "arguments":
                # Python literals where JSON belongs; a Gemini wire cannot carry text that is not a
                # JSON object, so there a parameter of the wrong type (a boolean as "false").
                broken = mistyped_args(req, name, args) if req.protocol == "gemini" else python_args(args)
                return call_events(name, kind, broken)
            return text_events(f'I will create it.\n<tool_call>{{"name": "{name}", "arguments": {args}}}</tool_call>')
        return text_events(DONE)

    return scenario


@pytest.mark.parametrize("broken", ["arguments", "text"])
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_a_broken_tool_call_is_repaired_and_executed(agent, route, broken, tmp_path, isolated_env):
    assert shutil.which(agent), f"{agent} missing: run scripts/install-agents.sh"
    with GuardUpstream(_repair_scenario(broken)) as up:
        proc = run(agent, profile_for(tmp_path, agent, route, up.url),
                   agent_args(agent, "create made.txt", tools=True), tmp_path, isolated_env)
    made = tmp_path / "work" / "made.txt"
    assert proc.returncode == 0, detail(proc)
    assert made.is_file() and made.read_text().strip() == "repaired", detail(proc)


@pytest.mark.parametrize("broken", ["arguments", "text"])
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_with_repair_off_the_same_script_fails(agent, route, broken, tmp_path, isolated_env):
    """Through agentwrap with `[guards.tool_repair] enabled = false`: the agent gets the
    broken call as the model sent it, and no file is made."""
    assert shutil.which(agent), f"{agent} missing: run scripts/install-agents.sh"
    with GuardUpstream(_repair_scenario(broken)) as up:
        off = run(agent, profile_for(tmp_path, agent, route, up.url, "[guards.tool_repair]\nenabled = false\n"),
                  agent_args(agent, "create made.txt", tools=True), tmp_path, isolated_env)
    assert not (tmp_path / "work" / "made.txt").exists(), detail(off)


@pytest.mark.parametrize("broken", ["arguments", "text"])
def test_without_agentwrap_the_same_script_fails(broken, tmp_path, isolated_env):
    """Claude Code pointed straight at the same upstream: no file."""
    assert shutil.which("claude"), "claude missing: run scripts/install-agents.sh"
    work = tmp_path / "work"
    work.mkdir()
    with GuardUpstream(_repair_scenario(broken)) as up:
        env = {**agent_env("claude", isolated_env), "ANTHROPIC_BASE_URL": up.url, "ANTHROPIC_AUTH_TOKEN": "k"}
        direct = subprocess.run(["claude", *agent_args("claude", "create made.txt", tools=True)], cwd=work, env=env,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
        assert up.model_bodies(), "Claude Code never reached the upstream"
    assert not (work / "made.txt").exists(), f"{direct.stdout[-2000:]}\n{direct.stderr[-2000:]}"
