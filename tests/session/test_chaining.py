"""Zero-config chaining and keyless backends, with the real agents.

- A gateway the user already configured for the agent (environment, Claude
  Code's settings `env` block, Codex's selected provider) is where a session
  without a profile forwards to, with the user's key, which goes to that host
  and nowhere else; the agent only sees the session secret.
- A profile whose backends need no key (a local server) works for a user who
  is not logged in to the agent: the agent gets the session secret as its key.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.agents.test_agents_e2e import agent_args, agent_env, run_agentwrap

pytestmark = pytest.mark.agents

USER_KEY = "user-gateway-key-0123456789"
TEXT = "Answer from the user's own gateway."


def _assert_ran(proc, gateway):
    """The agent answered with the gateway's text, and every request it made went through agentwrap."""
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, detail
    assert TEXT in proc.stdout, detail
    assert USER_KEY not in proc.stdout + proc.stderr
    reqs = gateway.model_requests()
    assert reqs, "nothing reached the gateway\n" + detail
    proxied = int(re.search(r"exited 0 · (\d+) request", proc.stderr).group(1))
    assert proxied >= len(reqs), "some requests went to the gateway past agentwrap\n" + detail
    assert all(r.headers.get("accept-encoding") == "identity" for r in reqs)  # what agentwrap sends upstream


@pytest.mark.parametrize("where", ["environment", "settings"])
def test_claude_chains_to_the_gateway_the_user_configured(where, upstream_factory, tmp_path, isolated_env):
    assert shutil.which("claude"), "claude missing: run scripts/install-agents.sh"
    gateway = upstream_factory(f'[[turns]]\ntext = "{TEXT}"\n')
    work = tmp_path / "work"
    work.mkdir()
    env = agent_env("claude", isolated_env)
    if where == "environment":
        env.update(ANTHROPIC_BASE_URL=gateway.url, ANTHROPIC_API_KEY=USER_KEY)
    else:  # Claude Code's settings beat the environment: agentwrap must still keep it on the proxy
        settings = isolated_env / ".claude" / "settings.json"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps({"env": {"ANTHROPIC_BASE_URL": gateway.url, "ANTHROPIC_AUTH_TOKEN": USER_KEY}}))
    proc = run_agentwrap(["claude", "--", *agent_args("claude", "text")], cwd=work, env=env)
    _assert_ran(proc, gateway)
    reqs = gateway.model_requests()
    for r in reqs:
        sent = r.headers.get("x-api-key", "") + r.headers.get("authorization", "")
        assert USER_KEY in sent  # the user's key, added by agentwrap for the host it was configured for
    assert "x-agentwrap-secret" not in reqs[0].headers


def test_gemini_chains_to_its_configured_base_url(upstream_factory, tmp_path, isolated_env):
    assert shutil.which("gemini"), "gemini missing: run scripts/install-agents.sh"
    gateway = upstream_factory(f'[[turns]]\ntext = "{TEXT}"\n', default_protocol="gemini")
    work = tmp_path / "work"
    work.mkdir()
    env = agent_env("gemini", isolated_env)
    env.update(GOOGLE_GEMINI_BASE_URL=gateway.url, GEMINI_API_KEY=USER_KEY)
    proc = run_agentwrap(["gemini", "--", *agent_args("gemini", "text")], cwd=work, env=env)
    _assert_ran(proc, gateway)
    reqs = gateway.model_requests()
    assert reqs and all(r.headers.get("x-goog-api-key") == USER_KEY for r in reqs)


def test_codex_chains_to_its_selected_provider(upstream_factory, tmp_path, isolated_env):
    assert shutil.which("codex"), "codex missing: run scripts/install-agents.sh"
    gateway = upstream_factory(f'[[turns]]\ntext = "{TEXT}"\n', default_protocol="openai_responses")
    work = tmp_path / "work"
    work.mkdir()
    config = isolated_env / ".codex" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        'model_provider = "corp"\n[model_providers.corp]\nname = "corp gateway"\n'
        f'base_url = "{gateway.url}/v1"\nenv_key = "CORP_KEY"\nwire_api = "responses"\n'
        'http_headers = { "x-corp-team" = "agents" }\n'
    )
    env = agent_env("codex", isolated_env)
    env["CORP_KEY"] = USER_KEY
    proc = run_agentwrap(["codex", "--", *agent_args("codex", "text")], cwd=work, env=env)
    _assert_ran(proc, gateway)
    reqs = gateway.model_requests()
    assert reqs
    for r in reqs:
        assert r.headers.get("authorization") == f"Bearer {USER_KEY}"
        assert r.headers.get("x-corp-team") == "agents"


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_keyless_builtin_profile_works_without_any_login(agent, upstream_factory, tmp_path, isolated_env):
    """The built-in `vllm` profile (a local server, no key) for a user with no login at all."""
    assert shutil.which(agent), f"{agent} missing: run scripts/install-agents.sh"
    server = upstream_factory(f'[[turns]]\ntext = "{TEXT}"\n', default_protocol="openai_chat")
    work = tmp_path / "work"
    work.mkdir()
    env = agent_env(agent, isolated_env)
    env.update(VLLM_BASE_URL=f"{server.url}/v1", VLLM_MODEL="local-model", USER_KEY_SHOULD_NOT_LEAK="x")
    proc = run_agentwrap([agent, "--profile", "vllm", "--", *agent_args(agent, "text")], cwd=work, env=env)
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, detail
    assert TEXT in proc.stdout, detail
    reqs = server.model_requests()
    assert reqs and all(r.json["model"] == "local-model" for r in reqs)
    for r in reqs:  # no credential of any kind reaches the local server
        assert not {"authorization", "x-api-key", "x-goog-api-key"} & set(r.headers)
