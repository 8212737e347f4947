"""Records a user lives with, from real agent runs on the built-in `offline` profile: `runs`
lists them, `show ID` finds them, routing after a failover is in the record, `runs prune` trims."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest

from agentwrap.capture.runs import default_capture_dir
from agentwrap.config import builtin_profiles_dir
from tests.agents.test_agents_e2e import agent_args, agent_env, run_agentwrap

pytestmark = pytest.mark.agents

OFFLINE_SCRIPT = builtin_profiles_dir() / "scripts" / "offline.toml"


def cli(*args: str, env: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agentwrap", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL, timeout=120)


def test_offline_runs_are_listed_shown_by_id_and_pruned(tmp_path, isolated_env):
    for agent in ("claude", "codex"):
        assert shutil.which(agent), f"{agent} missing: run scripts/install-agents.sh"
    work = tmp_path / "work"
    work.mkdir()
    env = {**agent_env("claude", isolated_env), **agent_env("codex", isolated_env)}
    for agent in ("claude", "codex", "claude"):
        proc = run_agentwrap([agent, "--profile", "offline", "--", *agent_args(agent, "text")], cwd=work, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        time.sleep(1.1)  # bundle names carry the second

    r = cli("runs", "--json", env=env, cwd=work)
    assert r.returncode == 0 and r.stderr == ""
    doc = json.loads(r.stdout)
    assert doc["schema"] == 1 and doc["total_runs"] == 3 and doc["capture_dir"] == str(default_capture_dir())
    assert [row["agent"] for row in doc["runs"]] == ["claude", "codex", "claude"]
    for row in doc["runs"]:
        assert row["profile"] == "offline" and row["exit_code"] == 0 and row["errors"] == 0 and row["models"]
        assert row["cost_usd"] is None  # the scripted backend has no price
    assert doc["total_bytes"] == sum(row["size_bytes"] for row in doc["runs"])

    table = cli("runs", env=env, cwd=work)
    lines = table.stdout.splitlines()
    assert table.returncode == 0 and lines[0].split()[:5] == ["id", "time", "agent", "profile", "models"]
    assert len(lines) == 5 and lines[-1].startswith("3 runs · ")
    codex_id = doc["runs"][1]["run_id"]
    assert lines[2].split()[0] == codex_id

    shown = cli("show", codex_id[:6], env=env, cwd=work)
    assert shown.returncode == 0 and "codex" in shown.stdout.splitlines()[0]
    assert "agentwrap's offline backend" in shown.stdout and "route: " in shown.stdout
    only = json.loads(cli("runs", "--json", "--agent", "codex", env=env, cwd=work).stdout)["runs"]
    assert [row["run_id"] for row in only] == [codex_id]
    found = json.loads(cli("runs", "--json", "--grep", "SAY HELLO", env=env, cwd=work).stdout)["runs"]
    assert len(found) == 3  # every run asked it

    pruned = cli("runs", "prune", "--keep", "1", env=env, cwd=work)
    assert pruned.returncode == 0 and pruned.stdout.splitlines()[-1].startswith("deleted 2 runs (")
    left = json.loads(cli("runs", "--json", env=env, cwd=work).stdout)
    assert left["total_runs"] == 1 and left["runs"][0]["run_id"] == doc["runs"][0]["run_id"]


def test_real_claude_failover_is_in_the_record(tmp_path, isolated_env):
    """The route's first backend refuses connections; the scripted fallback answers. `show`
    names both attempts, the reason and the model each got, in text, JSON and HTML."""
    assert shutil.which("claude"), "claude missing: run scripts/install-agents.sh"
    profile = tmp_path / "failover.toml"
    profile.write_text(f'''
[backends.down]
protocol = "anthropic_messages"
base_url = "http://127.0.0.1:9"

[backends.offline]
type = "scripted"
script = "{OFFLINE_SCRIPT}"

[[routes]]
backend = "down"
model = "claude-sonnet-4-5"
fallbacks = ["offline"]
''')
    work = tmp_path / "work"
    work.mkdir()
    env = agent_env("claude", isolated_env)
    proc = run_agentwrap(["claude", "--profile", str(profile), "--", *agent_args("claude", "text")], cwd=work, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "agentwrap's offline backend" in proc.stdout

    doc = json.loads(cli("show", "--json", env=env, cwd=work).stdout)
    model_calls = [e for e in doc["exchanges"] if e["attempts"]]
    assert model_calls, "no request went through the failover"
    e = model_calls[0]
    assert [(a["number"], a["backend"], a["decision"]) for a in e["attempts"]] == [(1, "down", "failover"), (2, "offline", "done")]
    assert e["attempts"][0]["model"] == "claude-sonnet-4-5" and e["attempts"][0]["outcome"].startswith("connection error")
    assert e["attempts"][0]["upstream_url"].startswith("http://127.0.0.1:9/")
    assert e["attempts"][1]["model"] == e["requested_model"] and e["backend"] == "offline"
    assert e["route"]["reason"] and e["route"]["fallbacks"] == ["offline"]

    text = cli("show", env=env, cwd=work).stdout
    assert "attempt 1 on down (claude-sonnet-4-5): connection error" in text and "trying fallback offline" in text
    assert "attempt 2 on offline" in text and "→ down, model claude-sonnet-4-5" in text
    page = cli("show", "--html", "-", env=env, cwd=work).stdout
    assert '<table class="attempts">' in page and "trying fallback offline" in page
