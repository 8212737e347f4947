"""Capture end to end: real agents record bundles that show renders and replay re-runs offline."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentwrap.capture.reader import read_bundle
from agentwrap.capture.render import to_html, to_json
from tests.conftest import http_profile
from tests.agents.test_agents_e2e import PROTOCOL, SHELL_SCRIPT, UP_KEY, agent_args, agent_env, run_agentwrap


def _bundles(d: Path) -> list[Path]:
    return sorted(d.glob("*.cbor"))


@pytest.mark.agents
@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_real_session_bundle_shows_and_replays_offline(agent, upstream_factory, tmp_path, isolated_env):
    assert shutil.which(agent), f"{agent} missing: run scripts/install-agents.sh"
    cap = tmp_path / "captures"
    work = tmp_path / "work"
    work.mkdir()
    env = agent_env(agent, isolated_env)

    up = upstream_factory(SHELL_SCRIPT)
    base = up.url + ("/v1" if agent == "codex" else "")
    profile = http_profile(tmp_path, PROTOCOL[agent], base, api_key_env="UP_KEY")
    proc = run_agentwrap(
        [agent, "--profile", str(profile), "--capture-dir", str(cap), "--", *agent_args(agent, "shell")], cwd=work, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / "made.txt").is_file()
    (bundle_path,) = _bundles(cap)
    assert str(bundle_path) in proc.stderr  # the summary names the bundle
    assert oct(bundle_path.stat().st_mode & 0o777) == "0o600"

    # no key material anywhere in the file: not the upstream key, not the session secret
    raw = bundle_path.read_bytes()
    assert UP_KEY.encode() not in raw
    bundle = read_bundle(str(bundle_path))
    assert bundle.complete and bundle.footer["exit_code"] == 0
    model_calls = [ex for ex in bundle.exchanges if ex.upstream_request is not None]
    assert len(model_calls) >= 2
    for ex in model_calls:  # four legs: agent request, upstream request, upstream response, what the agent got
        assert ex.request is not None and ex.upstream_response is not None and ex.agent_stream()
        assert UP_KEY not in ex.upstream_request.target and all(UP_KEY not in v for _, v in ex.upstream_request.headers)
    doc = to_json(bundle)
    assert doc["schema"] == 1
    dumped = json.dumps(doc, default=str)
    assert UP_KEY not in dumped and "made.txt" in dumped
    html = to_html(bundle)
    assert html.startswith("<!DOCTYPE html>") or html.lower().startswith("<!doctype html>")
    assert "http://" not in html.split("</head>")[0] and "https://" not in html.split("</head>")[0]
    show = subprocess.run([sys.executable, "-m", "agentwrap", "show", str(bundle_path)], capture_output=True, text=True)
    assert show.returncode == 0 and "made.txt" in show.stdout

    # replay with the upstream gone: same answers, zero divergence, the file made again
    up.__exit__(None, None, None)
    (work / "made.txt").unlink()
    rp = subprocess.run(
        [sys.executable, "-m", "agentwrap", "replay", str(bundle_path), "--capture-dir", str(cap)],
        cwd=work, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
    )
    assert rp.returncode == 0, rp.stderr[-3000:]
    assert "no divergence" in rp.stderr
    assert (work / "made.txt").read_text().strip() == "agentwrap-e2e"
    assert len(_bundles(cap)) == 2  # replay writes its own bundle

    # a tampered bundle: the recorded prompt changed after the header -> replay reports it
    prompt = agent_args(agent, "shell")[-1 if agent == "codex" else 1].encode()
    first = raw.find(prompt)
    second = raw.find(prompt, first + 1)
    assert second > 0
    tampered = tmp_path / "tampered.cbor"
    tampered.write_bytes(raw[:second] + prompt.replace(b"made", b"mode") + raw[second + len(prompt):])
    (work / "made.txt").unlink()
    bad = subprocess.run(
        [sys.executable, "-m", "agentwrap", "replay", str(tampered), "--no-capture"],
        cwd=work, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
    )
    assert bad.returncode != 0
    assert "diverged" in bad.stderr and "request 1" in bad.stderr


def test_bundle_survives_kill_9_mid_stream(tmp_path, upstream_factory, isolated_env):
    """agentwrap SIGKILLed while a stream is flowing: the bundle reads as incomplete, with what happened."""
    up = upstream_factory('[[turns]]\ntext = "' + "a long streamed answer " * 40 + '"\n')
    up.chunk_delay_s = 0.3
    profile = http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    agent = bindir / "claude"
    agent.write_text(f"""#!{sys.executable}
import json, os, urllib.request
body = json.dumps({{"model": "m", "max_tokens": 8, "stream": True, "messages": [{{"role": "user", "content": "tell me"}}]}}).encode()
req = urllib.request.Request(os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages", data=body,
                             headers={{"content-type": "application/json"}})
with urllib.request.urlopen(req) as r:
    while r.read(64):
        open({str(tmp_path / 'streaming')!r}, "w").close()
""")
    agent.chmod(0o755)
    cap = tmp_path / "cap"
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "UP_KEY": "k" * 16}
    p = subprocess.Popen(
        [sys.executable, "-m", "agentwrap", "claude", "--profile", str(profile), "--capture-dir", str(cap), "--", "x"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while not (tmp_path / "streaming").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a few more chunks, and the capture writer's next flush
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(10)
    (path,) = _bundles(cap)
    bundle = read_bundle(str(path))
    assert not bundle.complete and bundle.footer is None
    (ex,) = bundle.exchanges
    assert ex.request is not None and b"tell me" in ex.request.body.bytes
    assert ex.upstream_response is not None and ex.upstream_response.status == 200
    assert ex.chunks, "chunks streamed before the kill are in the bundle"
    show = subprocess.run([sys.executable, "-m", "agentwrap", "show", str(path)], capture_output=True, text=True)
    assert show.returncode == 0 and "incomplete" in show.stdout.lower()


def test_show_and_replay_refuse_a_foreign_file_in_one_line(tmp_path):
    junk = tmp_path / "junk.cbor"
    junk.write_bytes(b"this is not a bundle at all")
    for cmd in (["show", str(junk)], ["replay", str(junk)], ["show", str(tmp_path / "missing.cbor")]):
        r = subprocess.run([sys.executable, "-m", "agentwrap", *cmd], capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_runs_lists_newest_first_as_json(tmp_path, isolated_env):
    cap = tmp_path / "cap"
    env = {**os.environ}
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "claude").write_text("#!/bin/sh\nexit 3\n")
    (bindir / "claude").chmod(0o755)
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    for _ in range(2):
        subprocess.run([sys.executable, "-m", "agentwrap", "claude", "--profile", "offline", "--capture-dir", str(cap), "--", "x"],
                       env=env, capture_output=True)
        time.sleep(1.1)  # bundle names carry the second
    r = subprocess.run([sys.executable, "-m", "agentwrap", "runs", "--json", "--capture-dir", str(cap)], capture_output=True, text=True)
    doc = json.loads(r.stdout)
    assert doc["schema"] == 1 and len(doc["runs"]) == 2
    assert doc["runs"][0]["time"] > doc["runs"][1]["time"]
    assert all(run["exit_code"] == 3 and run["agent"] == "claude" and run["profile"] == "offline" for run in doc["runs"])


@pytest.mark.agents
def test_real_claude_bundle_survives_kill_9_mid_stream(upstream_factory, tmp_path, isolated_env):
    """Real Claude Code, a slow upstream stream, and agentwrap SIGKILLed halfway through it."""
    assert shutil.which("claude"), "claude missing: run scripts/install-agents.sh"
    up = upstream_factory('[[turns]]\ntext = "' + "word " * 400 + '"\n')
    up.chunk_delay_s = 0.4
    profile = http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY")
    cap = tmp_path / "cap"
    work = tmp_path / "work"
    work.mkdir()
    env = agent_env("claude", isolated_env)
    p = subprocess.Popen(
        [sys.executable, "-m", "agentwrap", "claude", "--profile", str(profile), "--capture-dir", str(cap), "--", "-p", "talk"],
        cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not up.model_requests() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert up.model_requests(), "claude never reached the upstream"
    time.sleep(1.5)  # a few chunks out, and the capture writer's next turns
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(10)
    (path,) = _bundles(cap)
    bundle = read_bundle(str(path))
    assert not bundle.complete and bundle.footer is None
    ex = next(e for e in bundle.exchanges if e.upstream_request is not None)
    assert b"talk" in ex.request.body.bytes and ex.upstream_response.status == 200
    assert ex.chunks and b"message_start" in b"".join(c.data for c in ex.chunks)
    show = subprocess.run([sys.executable, "-m", "agentwrap", "show", "--json", str(path)], capture_output=True, text=True)
    assert show.returncode == 0, show.stderr
    assert json.loads(show.stdout)["schema"] == 1
