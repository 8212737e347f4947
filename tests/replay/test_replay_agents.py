"""Replay that holds, with the real agents: record a run against a scripted upstream,
stop the upstream, `agentwrap replay` the bundle, and the agent must finish as it did.

- Codex with a shell-tool call: the tool result carries run-varying values (a random
  hex `Chunk ID`, the wall time), which the matcher learns from the recording.
- Gemini CLI through a translated backend (OpenAI Chat): the replay serves what the
  agent received (the Gemini stream), never the backend's raw Chat pieces; also for a
  bundle written before agentwrap recorded a translated stream's agent head.
- A command-only run (`::status` through `claude -p`): served from the record.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cbor2
import pytest

from agentwrap.capture.reader import read_bundle
from agentwrap.capture.writer import MAGIC
from tests.conftest import http_profile
from tests.agents.test_agents_e2e import DONE, SHELL_SCRIPT, agent_env, run_agentwrap

pytestmark = pytest.mark.agents

CODEX_CLASSIC = ["-c", "analytics.enabled=false", "-c", "features.plugins=false", "-m", "gpt-5.5",
                 "exec", "--skip-git-repo-check", "-s", "workspace-write", "create a file named made.txt"]
GEMINI_SHELL = ["-p", "create a file named made.txt", "--skip-trust", "--yolo"]


def _bundles(d: Path) -> list[Path]:
    return sorted(d.glob("*.cbor"))


def _detail(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"


def _replay(bundle: Path, *, cwd: Path, env: dict, capture_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agentwrap", "replay", str(bundle), "--capture-dir", str(capture_dir)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
    )


def _record(agent: str, profile: Path, args: list[str], *, cwd: Path, env: dict, cap: Path) -> Path:
    proc = run_agentwrap([agent, "--profile", str(profile), "--capture-dir", str(cap), "--", *args], cwd=cwd, env=env,
                         timeout=180)
    assert proc.returncode == 0, _detail(proc)
    (bundle,) = _bundles(cap)
    return bundle


def _agent_legs(path: Path) -> list[bytes]:
    return [b"".join(ex.agent_stream()) for ex in read_bundle(str(path)).exchanges]


def test_codex_shell_tool_session_replays_with_run_varying_tool_output(upstream_factory, tmp_path, isolated_env):
    """Codex's classic shell tool (`exec_command`) reports a random hex chunk id and the wall
    time in its result; the next request carries them, so it never equals its recording."""
    assert shutil.which("codex"), "codex missing: run scripts/install-agents.sh"
    env = agent_env("codex", isolated_env)
    work, cap = tmp_path / "work", tmp_path / "cap"
    work.mkdir()
    up = upstream_factory(SHELL_SCRIPT, default_protocol="openai_responses")
    recorded = _record("codex", http_profile(tmp_path, "openai_responses", up.url + "/v1", api_key_env="UP_KEY"),
                       CODEX_CLASSIC, cwd=work, env=env, cap=cap)
    assert (work / "made.txt").read_text().strip() == "agentwrap-e2e"
    up.__exit__(None, None, None)  # the upstream is gone: only the recording answers
    (work / "made.txt").unlink()

    rp = _replay(recorded, cwd=work, env=env, capture_dir=cap)
    assert rp.returncode == 0, _detail(rp)
    assert "no divergence (2 of 2 recorded responses served)" in rp.stderr, _detail(rp)
    assert DONE in rp.stdout, _detail(rp)
    assert (work / "made.txt").read_text().strip() == "agentwrap-e2e"

    # The case this test is about: the tool result of the replayed run differs from the recorded one.
    replayed = next(p for p in _bundles(cap) if p != recorded)
    ids = []
    for path in (recorded, replayed):
        second = read_bundle(str(path)).exchanges[1].request.body.bytes.decode()
        ids.append(re.findall(r"Chunk ID: (\w+)", second))
    assert ids[0] and ids[1] and ids[0] != ids[1], ids


def _without_agent_heads(src: Path, dst: Path) -> None:
    """The bundle as agentwrap wrote a translated stream before it recorded the agent's head:
    the same items without the body-less `agent_response` items."""
    data = src.read_bytes()
    assert data.startswith(MAGIC)
    fp = io.BytesIO(data)
    fp.seek(len(MAGIC))
    dec = cbor2.CBORDecoder(fp)
    items = []
    while fp.tell() < len(data):
        items.append(dec.decode())
    kept = [i for i in items if isinstance(i, dict) and not (i.get("t") == "agent_response" and "body" not in i)]
    assert len(kept) < len([i for i in items if isinstance(i, dict)]), "no agent head to drop: nothing was translated"
    dst.write_bytes(MAGIC + b"".join(cbor2.dumps(i) for i in kept))


def test_gemini_through_a_translated_backend_replays_what_it_received(upstream_factory, tmp_path, isolated_env):
    assert shutil.which("gemini"), "gemini missing: run scripts/install-agents.sh"
    env = agent_env("gemini", isolated_env)
    work, cap = tmp_path / "work", tmp_path / "cap"
    work.mkdir()
    up = upstream_factory(SHELL_SCRIPT, default_protocol="openai_chat")
    up.chunk_delay_s = 0.005  # the backend's stream arrives in many pieces, as a real one does
    recorded = _record("gemini", http_profile(tmp_path, "openai_chat", up.url + "/v1", api_key_env="UP_KEY"),
                       GEMINI_SHELL, cwd=work, env=env, cap=cap)
    assert len(up.model_requests()) >= 3  # the routing call, the tool call, the answer
    up.__exit__(None, None, None)
    legs = _agent_legs(recorded)
    streamed = [leg for leg in legs if leg.startswith(b"data: ")]
    assert len(streamed) >= 2 and not any(b"chat.completion" in leg or b"[DONE]" in leg for leg in legs)

    legacy = tmp_path / "legacy.cbor"
    _without_agent_heads(recorded, legacy)
    for bundle in (recorded, legacy):
        (work / "made.txt").unlink()
        out = tmp_path / f"replays-{bundle.stem}"
        rp = _replay(bundle, cwd=work, env=env, capture_dir=out)
        assert rp.returncode == 0, _detail(rp)
        assert "no divergence" in rp.stderr, _detail(rp)
        assert DONE in rp.stdout, _detail(rp)
        assert (work / "made.txt").read_text().strip() == "agentwrap-e2e"
        (replayed,) = _bundles(out)
        assert _agent_legs(replayed) == legs  # byte for byte what the agent got in the recorded run


def test_a_command_only_run_replays_clean(tmp_path, isolated_env, upstream_factory):
    """`::status` is answered by agentwrap itself, no backend: the replay serves that answer
    from the record (it names the recorded profile, not the replay's)."""
    assert shutil.which("claude"), "claude missing: run scripts/install-agents.sh"
    env = agent_env("claude", isolated_env)
    work, cap = tmp_path / "work", tmp_path / "cap"
    work.mkdir()
    up = upstream_factory('[[turns]]\ntext = "never asked"\n')
    profile = http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY", name="mine")
    proc = run_agentwrap(["claude", "--profile", str(profile), "--capture-dir", str(cap), "--", "-p", "::status"],
                         cwd=work, env=env)
    assert proc.returncode == 0, _detail(proc)
    assert "agentwrap status" in proc.stdout and "mine" in proc.stdout, _detail(proc)
    assert up.model_requests() == []
    up.__exit__(None, None, None)
    (recorded,) = _bundles(cap)

    rp = _replay(recorded, cwd=work, env=env, capture_dir=cap)
    assert rp.returncode == 0, _detail(rp)
    assert "no divergence (1 of 1 recorded responses served)" in rp.stderr, _detail(rp)
    assert rp.stdout == proc.stdout
