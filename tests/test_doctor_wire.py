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


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_wire_through_the_real_agent(agent, doctor):
    assert shutil.which(agent), f"{agent} missing: run scripts/install-agents.sh"
    result, doc, detail = doctor("--agent", agent, "--wire", "--json")
    row = wire_row(doc, agent)
    assert row["status"] == "ok", detail
    assert "scripted backend" in row["detail"]
    assert result.exit_code == 0, detail


def test_wire_catches_a_settings_file_that_bypasses_the_proxy(doctor, isolated_env, upstream_factory):
    """A Claude Code settings env block pointing elsewhere: the answer does not come from agentwrap."""
    assert shutil.which("claude"), "claude missing: run scripts/install-agents.sh"
    decoy = upstream_factory(f'[[turns]]\ntext = "{DECOY_TEXT}"\n')
    settings = isolated_env / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"env": {"ANTHROPIC_BASE_URL": decoy.url}}))

    result, doc, detail = doctor("--agent", "claude", "--wire", "--json")
    assert result.exit_code == 1, detail
    row = wire_row(doc, "claude")
    assert row["status"] == "fail", detail
    assert "did not come from agentwrap" in row["detail"] or "exited" in row["detail"], detail
    assert "settings.json" in row["fix"] and "ANTHROPIC_BASE_URL" in row["fix"], detail
    assert decoy.model_requests(), "Claude Code did not use the settings file's base URL\n" + detail
