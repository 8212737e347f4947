"""What agentwrap prints after the agent exits: the summary line, and how to resume the
agent's session through agentwrap. Real agents in `-p` / `exec` mode; the TUI side is in
test_tui_commands.py."""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import sys
import threading

import pytest

from agentwrap.agents import CLAUDE, CODEX, GEMINI
from agentwrap.capture.cost import format_cost, request_cost
from agentwrap.protocols import neutral as ev
from agentwrap.session import SessionResult
from agentwrap.session import summary_line
from tests.conftest import TEXT_SCRIPT, http_profile
from tests.support.guard_upstream import GuardUpstream
from tests.agents.test_agents_e2e import PROTOCOL, agent_env, run_agentwrap
from tests.support.upstream import ConnectProxy

# -- the line itself, on plain data ---------------------------------------------------------------


def _result(**kw) -> SessionResult:
    base = dict(exit_code=0, requests=6, errors=0, duration_s=12.34, bundle="/runs/x.cbor")
    return SessionResult(**{**base, **kw})


@pytest.mark.parametrize(("kw", "expected"), [
    ({}, "agentwrap: claude exited 0 · 6 requests, 0 errors · 12.3 s · /runs/x.cbor"),
    (dict(requests=1, errors=1, failovers=1, bundle=None), "agentwrap: claude exited 0 · 1 request, 1 error, 1 failover · 12.3 s"),
    (dict(models={"anthropic": ["claude-sonnet-4-5", "claude-haiku-4-5"]},
          tokens={"input_tokens": 123_456, "output_tokens": 845, "cache_read_tokens": 98_000, "cache_write_tokens": 0},
          cost_usd=0.04213),
     "agentwrap: claude exited 0 · 6 requests, 0 errors · claude-sonnet-4-5, claude-haiku-4-5 on anthropic · "
     "tokens 123.5k in (98k cache reads), 845 out · $0.04 · 12.3 s · /runs/x.cbor"),
    (dict(models={"work": ["m1"], "local": ["qwen3"]},
          tokens={"input_tokens": 2_500_000, "output_tokens": 1000, "cache_read_tokens": 0, "cache_write_tokens": 4000},
          cost_usd=1.5, unpriced=2, guard_actions={"tool_loop": 2, "loop": 1}),
     "agentwrap: claude exited 0 · 6 requests, 0 errors · m1 on work; qwen3 on local · tokens 2.5M in (4k cache writes), 1k out · "
     "$1.50+ · 3 guard actions (repetition loop 1, tool-call loop 2) · 12.3 s · /runs/x.cbor"),
    # unknown models: tokens, and no cost rather than a wrong one
    (dict(models={"local": ["qwen3"]}, tokens={"input_tokens": 10, "output_tokens": 2, "cache_read_tokens": 0,
                                               "cache_write_tokens": 0}, unpriced=1),
     "agentwrap: claude exited 0 · 6 requests, 0 errors · qwen3 on local · tokens 10 in, 2 out · 12.3 s · /runs/x.cbor"),
])
def test_summary_line(kw, expected):
    assert summary_line("claude", _result(**kw)) == expected


# -- where each agent saved its session (files as the agents write them) ----------------------------

SID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
OTHER = "11111111-2222-4333-8444-555555555555"


def test_claude_resumes_the_newest_session_it_saved(tmp_path):
    env = {"HOME": str(tmp_path)}
    project = tmp_path / ".claude" / "projects" / "-work"
    project.mkdir(parents=True)
    (project / f"{SID}.jsonl").write_text("{}\n")
    assert CLAUDE.resume.saved(env, "/work", [OTHER, SID], 0.0) == SID  # OTHER was never saved
    assert CLAUDE.resume.saved(env, "/work", [OTHER], 0.0) is None
    assert CLAUDE.resume.saved(env, "/work", ["../../etc/passwd"], 0.0) is None
    assert CLAUDE.resume.from_request([(b"X-Claude-Code-Session-Id", SID.encode())]) == SID
    assert CLAUDE.resume.args(SID) == ["--resume", SID]


def test_codex_skips_side_threads_without_a_rollout(tmp_path):
    env = {"HOME": str(tmp_path)}
    day = tmp_path / ".codex" / "sessions" / "2026" / "12" / "03"
    day.mkdir(parents=True)
    (day / f"rollout-2026-12-03T10-00-00-{SID}.jsonl").write_text("{}\n")
    # the title thread was used last, but only the user's thread is saved
    assert CODEX.resume.saved(env, "/work", [OTHER, SID], 0.0) == SID
    assert CODEX.resume.saved({"HOME": str(tmp_path), "CODEX_HOME": str(tmp_path / "elsewhere")}, "/w", [SID], 0.0) is None
    assert CODEX.resume.from_request([(b"session-id", OTHER.encode()), (b"thread-id", SID.encode())]) == SID
    assert CODEX.resume.args(SID) == ["resume", SID]


def test_gemini_resumes_the_session_file_written_during_the_run(tmp_path):
    import os
    import time

    gemini = tmp_path / ".gemini"
    chats = gemini / "tmp" / "work" / "chats"
    chats.mkdir(parents=True)
    (gemini / "projects.json").write_text(json.dumps({"projects": {"/src/work": "work"}}))
    old = chats / "session-2026-12-01T10-00-old11111.jsonl"
    old.write_text(json.dumps({"sessionId": OTHER, "kind": "main"}) + "\n")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    env = {"HOME": str(tmp_path)}
    since = time.time()
    assert GEMINI.resume.saved(env, "/src/work", [], since) is None  # nothing written during the run
    (chats / "session-2026-12-03T10-00-0a1b2c3d.jsonl").write_text(json.dumps({"sessionId": SID, "kind": "main"}) + "\n{}\n")
    assert GEMINI.resume.saved(env, "/src/work", [], since) == SID
    assert GEMINI.resume.from_request is None  # a Gemini API request names no session
    assert GEMINI.resume.args(SID) == ["--resume", SID]


# -- real agents ------------------------------------------------------------------------------------

pytestmark_agents = pytest.mark.agents
RESUME = re.compile(r"agentwrap: resume with: (.+)")


def _first_args(agent: str, prompt: str) -> list[str]:
    if agent == "claude":
        return ["-p", prompt, "--output-format", "json"]
    if agent == "codex":
        return ["-c", "analytics.enabled=false", "-c", "features.plugins=false", "exec", "--skip-git-repo-check", prompt]
    return ["-p", prompt, "--skip-trust", "--output-format", "json"]


def _own_session_id(agent: str, proc: subprocess.CompletedProcess) -> str:
    """The session id the agent itself reports for a `-p` / `exec` run."""
    if agent == "codex":
        m = re.search(r"session id: ([0-9a-f-]{36})", proc.stderr)
        assert m, proc.stderr
        return m.group(1)
    return json.loads(proc.stdout[proc.stdout.index("{"):])["session_id"]


def _resumed_args(agent: str, printed: list[str], prompt: str) -> list[str]:
    """The printed command's agent arguments, with a prompt, run non-interactively."""
    if agent == "codex":
        assert printed[0] == "resume"
        return ["-c", "analytics.enabled=false", "-c", "features.plugins=false", "exec", "--skip-git-repo-check", *printed, prompt]
    return [*printed, "-p", prompt, *(["--skip-trust"] if agent == "gemini" else [])]


@pytestmark_agents
@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_resume_through_agentwrap_continues_the_session(agent, upstream_factory, tmp_path, isolated_env):
    """After a `-p` run agentwrap prints how to resume the session through agentwrap, with the
    id the agent reports; running that command gives the model the first conversation back."""
    assert shutil.which(agent), f"{agent} missing: run scripts/install-agents.sh"
    up = upstream_factory(TEXT_SCRIPT)
    profile = http_profile(tmp_path, PROTOCOL[agent], up.url + ("/v1" if agent == "codex" else ""), api_key_env="UP_KEY")
    work = tmp_path / "work"
    work.mkdir()
    env = agent_env(agent, isolated_env)

    first = run_agentwrap([agent, "--profile", str(profile), "--", *_first_args(agent, "remember the word zebra-417")],
                          cwd=work, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    m = RESUME.search(first.stderr)
    assert m, first.stderr[-3000:]
    import shlex

    printed = shlex.split(m.group(1))
    assert printed[:4] == ["agentwrap", agent, "--profile", str(profile)] and printed[4] == "--", printed
    sid = _own_session_id(agent, first)
    assert sid in printed[5:], (sid, printed)

    before = len(up.model_requests())
    second = run_agentwrap([agent, "--profile", str(profile), "--", *_resumed_args(agent, printed[5:], "what was the word?")],
                           cwd=work, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    resumed = up.model_requests()[before:]
    assert resumed and any("zebra-417" in r.body.decode() for r in resumed), "the resumed session lost its history"


def test_no_resume_line_when_the_agent_saved_nothing(upstream_factory, tmp_path, isolated_env):
    """`claude -p --no-session-persistence`: nothing to resume, so agentwrap offers nothing."""
    assert shutil.which("claude"), "claude missing: run scripts/install-agents.sh"
    up = upstream_factory(TEXT_SCRIPT)
    profile = http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY")
    work = tmp_path / "work"
    work.mkdir()
    proc = run_agentwrap(["claude", "--profile", str(profile), "--", "-p", "hi", "--no-session-persistence"],
                         cwd=work, env=agent_env("claude", isolated_env))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "agentwrap: claude exited 0" in proc.stderr and "resume with" not in proc.stderr, proc.stderr[-3000:]


# -- the summary of a real run: failover, models, tokens, cost --------------------------------------

USAGE = {"input_tokens": 15_000, "output_tokens": 420, "cache_read_tokens": 12_000, "cache_write_tokens": 0}
MODEL = "claude-opus-5-5"  # Claude Code's default (it refuses retired models)


@pytestmark_agents
def test_summary_of_a_real_claude_run(tmp_path, isolated_env):
    """Claude Code through agentwrap to api.anthropic.com (over TLS, through HTTPS_PROXY: tests
    have no network): the first backend answers 429, the second answers with usage. The
    summary names the model and the backend that answered, counts the failover and no error,
    shows the tokens and the list price of that model at that host, and agrees with `runs`."""
    import trustme

    assert shutil.which("claude"), "claude missing: run scripts/install-agents.sh"
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("api.anthropic.com").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    lock = threading.Lock()
    calls: list[str] = []

    def scenario(req):
        with lock:
            calls.append(req.body.get("model"))
            first = len(calls) == 1
        if first:
            return 429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
        return [ev.MessageStart("msg_summary", MODEL), ev.TextDelta("Summarised."), ev.Usage(**USAGE), ev.Stop("end_turn")]

    profile = tmp_path / "anthropic.toml"
    backend = 'protocol = "anthropic_messages"\nbase_url = "https://api.anthropic.com"\napi_key_env = "UP_KEY"\n'
    profile.write_text(f"[backends.primary]\n{backend}\n[backends.secondary]\n{backend}\n"
                       '[[routes]]\nbackend = "primary"\nfallbacks = ["secondary"]\n')
    work = tmp_path / "work"
    work.mkdir()
    with GuardUpstream(scenario, ssl_context=server_ctx) as up, ConnectProxy(up.port) as proxy:
        env = {**agent_env("claude", isolated_env), "HTTPS_PROXY": proxy.url, "NO_PROXY": "127.0.0.1,localhost", "SSL_CERT_FILE": str(ca_file)}
        proc = run_agentwrap(["claude", "--profile", str(profile), "--", "-p", "summarise", "--model", MODEL], cwd=work, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Summarised." in proc.stdout
    assert calls == [MODEL, MODEL]  # refused by the first backend, answered by the second

    price = request_cost(MODEL, "https://api.anthropic.com/v1/messages", USAGE)
    assert price is not None and price > 0, "genai-prices no longer knows the model"
    line = next(x for x in proc.stderr.splitlines() if x.startswith("agentwrap: claude exited"))
    assert re.fullmatch(
        rf"agentwrap: claude exited 0 · 1 request, 0 errors, 1 failover · {MODEL} on secondary · "
        rf"tokens 15k in \(12k cache reads\), 420 out · {re.escape(format_cost(price))} · \d+\.\d s · \S+\.cbor",
        line,
    ), line

    runs = subprocess.run([sys.executable, "-m", "agentwrap", "runs", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert runs.returncode == 0, runs.stderr
    (run,) = json.loads(runs.stdout)["runs"]
    assert run["cost_usd"] == pytest.approx(price) and run["models"] == [MODEL], run


def test_a_local_run_never_imports_the_price_library():
    """Pricing a run whose requests all went to loopback, a LAN host or an in-process backend
    is decided before genai-prices is imported (its import costs ~250 ms at the end of a run)."""
    code = (
        "import sys\n"
        "from agentwrap.capture.cost import run_cost\n"
        "u = {'input_tokens': 100, 'output_tokens': 5}\n"
        "reqs = [('claude-opus-5-5', url, u) for url in ('http://127.0.0.1:8080/v1/messages', 'http://localhost:11434/v1/chat/completions',\n"
        "        'http://192.168.1.20:8000/v1/responses', 'http://gpu-box:8000/v1/chat/completions', 'scripted://offline')]\n"
        "print(run_cost(reqs), 'genai_prices' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "(None, 5) False", out.stdout + out.stderr
