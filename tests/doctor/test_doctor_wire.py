"""`agentwrap doctor --agent NAME --wire` with the real agent CLIs.

The pinned agents come from scripts/install-agents.sh (into .agents/). These
tests fail, not skip, when an agent is missing: CI must have them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from agentwrap.doctor_cli import register

pytestmark = pytest.mark.agents

DECOY_TEXT = "Decoy answer straight from a server agentwrap never saw."


@pytest.fixture
def doctor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    app = typer.Typer()
    register(app)

    @app.command("version")
    def version() -> None:
        pass

    def invoke(*args: str):
        result = CliRunner().invoke(app, ["doctor", *args])
        detail = f"exit {result.exit_code}\nstdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-2000:]}"
        return result, json.loads(result.stdout), detail

    return invoke


def wire_row(doc: dict, agent: str) -> dict:
    rows = [c for c in doc["checks"] if c["name"] == f"{agent} wire"]
    assert len(rows) == 1, doc
    return rows[0]


def trust_folder(home: Path, folder: Path) -> None:
    """Trust `folder` in Gemini CLI the way its interactive prompt does (~/.gemini/trustedFolders.json)."""
    path = home / ".gemini" / "trustedFolders.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({str(folder): "TRUST_FOLDER"}))


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_wire_through_the_real_agent(agent, doctor, isolated_env):
    assert shutil.which(agent), f"{agent} missing: run scripts/install-agents.sh"
    if agent == "gemini":
        trust_folder(isolated_env, Path.cwd())
    result, doc, detail = doctor("--agent", agent, "--wire", "--json")
    row = wire_row(doc, agent)
    assert row["status"] == "ok", detail
    assert "scripted backend" in row["detail"]
    assert result.exit_code == 0, detail


def test_wire_runs_gemini_as_the_user_would_in_an_untrusted_folder(doctor):
    """No --skip-trust added behind the user's back: an untrusted folder fails, with the fix."""
    assert shutil.which("gemini"), "gemini missing: run scripts/install-agents.sh"
    result, doc, detail = doctor("--agent", "gemini", "--wire", "--json")
    row = wire_row(doc, "gemini")
    assert row["status"] == "fail" and "not trusted" in row["detail"] and "55" in row["detail"], detail
    assert "--skip-trust" in row["fix"] and "GEMINI_CLI_TRUST_WORKSPACE" in row["fix"], detail
    assert result.exit_code == 1


def test_wire_keeps_claude_on_the_proxy_despite_a_settings_base_url(doctor, isolated_env, upstream_factory):
    """A Claude Code settings env block pointing elsewhere (which beats the environment agentwrap
    sets) no longer sends Claude Code past agentwrap: its own --settings file wins, and the
    settings' endpoint becomes the chained upstream instead."""
    assert shutil.which("claude"), "claude missing: run scripts/install-agents.sh"
    decoy = upstream_factory(f'[[turns]]\ntext = "{DECOY_TEXT}"\n')
    settings = isolated_env / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"env": {"ANTHROPIC_BASE_URL": decoy.url}}))

    result, doc, detail = doctor("--agent", "claude", "--wire", "--json")
    row = wire_row(doc, "claude")
    assert row["status"] == "ok", detail
    assert result.exit_code == 0, detail
    assert not decoy.model_requests(), "Claude Code went to the settings file's base URL, past agentwrap\n" + detail
    profile = next(c for c in doc["checks"] if c["name"] == "claude profile")
    assert decoy.url in profile["detail"], detail
