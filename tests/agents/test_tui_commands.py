"""In-chat commands typed into each real agent's own TUI, in a real terminal (tmux).

Each agent runs through agentwrap on the built-in `offline` profile in a
200x50 terminal. The test types `::status` the way a user does, reads
agentwrap's answer on the screen, asks a question (the scripted model
answers), checks that `::status` now counts the tokens, quits the agent with
its own quit command, and reads what agentwrap printed after it: the summary
line and how to resume the session through agentwrap, with the same session id
the agent itself offers.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.agents.test_agents_e2e import agent_env
from tests.support.tui import Terminal

pytestmark = pytest.mark.agents

READY = {"claude": "❯", "codex": "? for shortcuts", "gemini": "Type your message"}
QUIT = {"claude": "/exit", "codex": "/quit", "gemini": "/quit"}
# How each agent offers to resume the session at exit (its own command, which would leave agentwrap out).
OWN_RESUME = {
    "claude": r"claude --resume ([0-9a-f-]{36})",
    "codex": r"codex resume ([0-9a-f-]{36})",
    "gemini": r"gemini --resume ([0-9a-f-]{36})",
}
ANSWER = "Hello from agentwrap's offline backend"


def seed_home(agent: str, home: Path, work: Path) -> None:
    """What a user who has used the agent before has: onboarding done, this folder trusted."""
    if agent == "claude":
        (home / ".claude.json").write_text(json.dumps({
            "hasCompletedOnboarding": True,
            "theme": "dark",
            "projects": {str(work): {"hasTrustDialogAccepted": True}},
        }))
    elif agent == "codex":
        codex = home / ".codex"
        codex.mkdir(exist_ok=True)
        (codex / "config.toml").write_text(
            f'check_for_update_on_startup = false\n\n[analytics]\nenabled = false\n\n[features]\nplugins = false\n\n'
            f'[projects.{json.dumps(str(work))}]\ntrust_level = "trusted"\n'
        )
    else:
        gemini = home / ".gemini"
        gemini.mkdir(exist_ok=True)
        (gemini / "trustedFolders.json").write_text(json.dumps({str(work): "TRUST_FOLDER"}))


@pytest.fixture
def terminal(tmp_path, isolated_env):
    made: list[Terminal] = []

    def make(agent: str) -> Terminal:
        work = tmp_path / "work"
        work.mkdir()
        env = agent_env(agent, isolated_env)  # also Gemini's settings (no usage statistics)
        seed_home(agent, isolated_env, work)
        term = Terminal(tmp_path, env, work)
        made.append(term)
        return term

    yield make
    for term in made:
        term.close()


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_status_typed_in_the_agents_tui(agent, terminal):
    assert shutil.which(agent), f"{agent} missing: run scripts/install-agents.sh"
    term = terminal(agent)
    term.start([sys.executable, "-m", "agentwrap", agent, "--profile", "offline"])
    term.wait_for(READY[agent], timeout=60)

    # agentwrap answers the command itself, in the agent's own chat
    term.submit("::status")
    screen = term.wait_for("backends: scripted", nudge_s=10)
    assert "profile:  offline" in screen, screen
    assert "agentwrap status" in screen
    assert "No such file or directory" not in screen  # not run as a shell command
    first = _tokens_in(screen)

    # an ordinary prompt still reaches the (scripted) model
    term.submit("say hello to the terminal")
    term.wait_for(ANSWER, nudge_s=10)
    # and the next `::status` counts the tokens that answer used
    term.submit("::status")
    screen = term.wait_for("backends: scripted", count=2, nudge_s=10)
    assert _tokens_in(screen) > first, screen

    term.submit(QUIT[agent])
    assert term.wait_exit(timeout=45, nudge_s=10) == 0
    screen = term.screen(history=True)
    summary = re.search(rf"agentwrap: {agent} exited 0 · (\d+) requests?, 0 errors · (.+?) on scripted · tokens (\S+) in", screen)
    assert summary, screen
    assert int(summary.group(1)) >= 3  # two commands and a prompt (Gemini adds a routing call per prompt)
    resume = re.search(rf"agentwrap: resume with: agentwrap {agent} --profile offline -- (.+)", screen)
    assert resume, screen
    own = re.search(OWN_RESUME[agent], screen)
    assert own, f"{agent} no longer prints its own resume command:\n{screen}"
    expected = {"claude": f"--resume {own.group(1)}", "codex": f"resume {own.group(1)}", "gemini": f"--resume {own.group(1)}"}
    assert resume.group(1).strip() == expected[agent]
    leftovers = term.leftovers()
    assert not leftovers, f"still running on the agent's terminal after agentwrap exited:\n{leftovers}"


def _tokens_in(screen: str) -> int:
    """The input tokens of the newest `::status` answer on the screen."""
    counts = re.findall(r"tokens:\s+(\d+) in, \d+ out", screen)
    assert counts, screen
    return int(counts[-1])
