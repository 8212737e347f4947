"""`agentwrap AGENT -- ARGS`: wiring, exit codes, signals and errors, with a stand-in agent."""

from __future__ import annotations

import json
import re
import tomllib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TEXT_SCRIPT, http_profile, write_profile

STANDIN = Path(__file__).resolve().parents[1] / "support" / "standin_agent.py"


@pytest.fixture
def standin(tmp_path: Path, isolated_env: Path):
    """Install the stand-in as claude, codex and gemini; return a runner."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("claude", "codex", "gemini"):
        exe = bindir / name
        exe.write_text(f"#!{sys.executable}\nimport runpy\nrunpy.run_path({str(STANDIN)!r}, run_name='__main__')\n")
        exe.chmod(0o755)
    out = tmp_path / "standin.json"

    class Runner:
        record_path = out

        def env(self, **extra: str) -> dict[str, str]:
            env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "STANDIN_OUT": str(out)}
            env.update(extra)
            return env

        def run(self, args: list[str], timeout: float = 30, cwd: Path | None = None, **extra: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-m", "agentwrap", *args],
                env=self.env(**extra), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd,
            )

        def spawn(self, args: list[str], **extra: str) -> subprocess.Popen:
            return subprocess.Popen(
                [sys.executable, "-m", "agentwrap", *args],
                env=self.env(**extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )

        def record(self) -> dict:
            return json.loads(out.read_text())

        def wait_ready(self, timeout: float = 15) -> dict:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if out.exists():
                    rec = self.record()
                    if rec.get("ready"):
                        return rec
                time.sleep(0.05)
            raise AssertionError("stand-in agent never became ready")

    return Runner()


def _port_of(url: str) -> int:
    return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


# -- wiring --------------------------------------------------------------------

def test_claude_gets_the_proxy_and_the_secret_never_the_key(standin):
    proc = standin.run(["claude", "--", "-p", "hello world", "--model", "x"], ANTHROPIC_API_KEY="sk-user-real-key")
    assert proc.returncode == 0, proc.stderr
    rec = standin.record()
    assert rec["argv"] == ["-p", "hello world", "--model", "x"]
    env = rec["env"]
    base = env["ANTHROPIC_BASE_URL"]
    assert base.startswith("http://127.0.0.1:")
    secret = base.rsplit("/", 1)[1]
    assert len(secret) >= 24 and env["ANTHROPIC_AUTH_TOKEN"] == secret
    assert "ANTHROPIC_API_KEY" not in env
    assert "sk-user-real-key" not in json.dumps(env)


def test_claude_own_login_is_left_alone(standin):
    proc = standin.run(["claude", "--", "-p", "x"])
    assert proc.returncode == 0, proc.stderr
    env = standin.record()["env"]
    assert env["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1:")
    assert "ANTHROPIC_AUTH_TOKEN" not in env and "ANTHROPIC_API_KEY" not in env


def test_each_run_gets_a_fresh_secret_and_nothing_outlives_it(standin):
    secrets, ports = set(), []
    for _ in range(2):
        assert standin.run(["claude", "--", "-p", "x"], ANTHROPIC_API_KEY="k").returncode == 0
        base = standin.record()["env"]["ANTHROPIC_BASE_URL"]
        secrets.add(base.rsplit("/", 1)[1])
        ports.append(_port_of(base))
    assert len(secrets) == 2
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.parametrize("first", [["exec", "do it"], ["resume", "--last"], []])
def test_codex_provider_flags_come_before_the_users_args(standin, first):
    proc = standin.run(["codex", "--", *first], OPENAI_API_KEY="sk-openai-user")
    assert proc.returncode == 0, proc.stderr
    rec = standin.record()
    argv = rec["argv"]
    n = len(argv) - len(first)
    assert argv[n:] == first
    assert argv[0] == "--no-daemon"  # a shared Codex server would bypass agentwrap; asked for without a warning
    flags = dict(argv[i + 1].split("=", 1) for i in range(1, n, 2) if argv[i] == "-c")
    assert all(argv[i] == "-c" for i in range(1, n, 2))
    assert flags["model_provider"] == '"agentwrap"'
    base = json.loads(flags["model_providers.agentwrap.base_url"])
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", base)  # no secret in argv: any local user can read it
    assert flags["model_providers.agentwrap.wire_api"] == '"responses"'
    assert flags["model_providers.agentwrap.supports_websockets"] == "false"
    headers = tomllib.loads("h = " + flags["model_providers.agentwrap.env_http_headers"])["h"]
    key_var = json.loads(flags["model_providers.agentwrap.env_key"])
    env = rec["env"]
    secret = env[headers["x-agentwrap-secret"]]
    assert len(secret) >= 24 and env[key_var] == secret
    assert not any(secret in a for a in argv)
    assert "OPENAI_API_KEY" not in env and "sk-openai-user" not in json.dumps(env)


@pytest.mark.parametrize("own", [["--no-daemon", "exec", "x"], ["--remote", "ws://127.0.0.1:1"], ["--remote=unix://"]])
def test_codex_users_own_daemon_flags_are_not_doubled(standin, own):
    assert standin.run(["codex", "--", *own], OPENAI_API_KEY="k").returncode == 0
    argv = standin.record()["argv"]
    assert argv.count("--no-daemon") == own.count("--no-daemon")


def test_codex_chatgpt_login_passes_through(standin, isolated_env):
    (isolated_env / ".codex").mkdir()
    (isolated_env / ".codex" / "auth.json").write_text('{"auth_mode": "chatgpt"}')
    assert standin.run(["codex", "--", "exec", "x"]).returncode == 0
    argv = standin.record()["argv"]
    assert "model_providers.agentwrap.requires_openai_auth=true" in argv
    assert not any(a.startswith("model_providers.agentwrap.env_key") for a in argv)


def test_gemini_gets_api_key_auth_without_touching_user_settings(standin, isolated_env):
    user_dir = isolated_env / ".gemini"
    user_dir.mkdir()
    original = json.dumps({"ui": {"theme": "Dracula"}, "security": {"auth": {"selectedType": "oauth-personal"}}})
    (user_dir / "settings.json").write_text(original)
    (user_dir / "GEMINI.md").write_text("user memory")
    proc = standin.run(
        ["gemini", "--", "-p", "hi"],
        GEMINI_API_KEY="AI-user-key",
        STANDIN_READ="$GEMINI_CLI_HOME/.gemini/settings.json",
        STANDIN_CREATE="$GEMINI_CLI_HOME/.gemini/tmp/project/chat.json",
    )
    assert proc.returncode == 0, proc.stderr
    rec = standin.record()
    env = rec["env"]
    assert "AI-user-key" not in json.dumps(env)
    base = env["GOOGLE_GEMINI_BASE_URL"]
    assert base.startswith("http://127.0.0.1:") and env["GEMINI_API_KEY"] == base.rsplit("/", 1)[1]
    seen = json.loads(rec["read"])  # what Gemini CLI reads as the user's settings
    assert seen["security"]["auth"]["selectedType"] == "gemini-api-key"
    assert seen["ui"] == {"theme": "Dracula"}
    assert (user_dir / "settings.json").read_text() == original  # the user's own file is never edited
    assert (user_dir / "tmp" / "project" / "chat.json").read_text() == "created by the agent"  # kept
    assert not Path(env["GEMINI_CLI_HOME"]).exists()  # the shadow home is gone after the run


def test_gemini_google_login_goes_to_code_assist(standin):
    assert standin.run(["gemini", "--", "-p", "hi"]).returncode == 0
    env = standin.record()["env"]
    assert env["CODE_ASSIST_ENDPOINT"].startswith("http://127.0.0.1:")
    assert "GEMINI_API_KEY" not in env and "GEMINI_CLI_HOME" not in env


# -- exit codes and signals ----------------------------------------------------

def test_exit_code_is_the_agents(standin):
    proc = standin.run(["claude", "--", "x"], STANDIN_MODE="exit:7")
    assert proc.returncode == 7
    assert "agentwrap: claude exited 7" in proc.stderr


def test_agent_killed_by_signal_gives_128_plus_n(standin):
    proc = standin.run(["claude", "--", "x"], STANDIN_MODE=f"signal:{int(signal.SIGKILL)}")
    assert proc.returncode == 128 + signal.SIGKILL


def test_ctrl_c_reaches_the_agent_not_a_traceback(standin):
    p = standin.spawn(["claude", "--", "x"], STANDIN_MODE="wait:20")
    standin.wait_ready()
    os.killpg(p.pid, signal.SIGINT)  # what a terminal does: the whole foreground group
    out, err = p.communicate(timeout=15)
    assert p.returncode == 130
    assert standin.record()["signals"] == ["SIGINT"]
    assert "Traceback" not in err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_termination_signals_are_forwarded(standin, sig):
    p = standin.spawn(["claude", "--", "x"], STANDIN_MODE="wait:20", STANDIN_TERM_EXIT="0")
    standin.wait_ready()
    p.send_signal(sig)  # to agentwrap alone
    out, err = p.communicate(timeout=15)
    assert sig.name in standin.record()["signals"]
    assert "Traceback" not in err


def test_agent_dies_with_agentwrap(standin):
    import psutil

    p = standin.spawn(["claude", "--", "x"], STANDIN_MODE="wait:30")
    rec = standin.wait_ready()
    child = psutil.Process(rec["pid"])
    p.kill()  # SIGKILL: agentwrap gets no chance to clean up
    p.communicate(timeout=5)
    gone, alive = psutil.wait_procs([child], timeout=10)
    assert child in gone, "the agent outlived a killed agentwrap"


def test_proxy_serves_the_agent_and_summary_counts_it(standin, upstream_factory, tmp_path):
    up = upstream_factory(TEXT_SCRIPT)
    profile = http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY")
    proc = standin.run(
        ["claude", "--profile", str(profile), "--", "x"],
        UP_KEY="upkey", STANDIN_REQUEST_URL_FROM="ANTHROPIC_BASE_URL",
    )
    assert proc.returncode == 0, proc.stderr
    rec = standin.record()
    assert rec["response"]["content"][0]["text"] == "Hello from the scripted upstream."
    assert up.requests[0].headers["x-api-key"] == "upkey"
    assert "UP_KEY" not in rec["env"] and "upkey" not in json.dumps(rec["env"])  # the key stays in agentwrap
    assert "1 request, 0 errors" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_profile_from_environment_variable(standin, upstream_factory, tmp_path):
    up = upstream_factory(TEXT_SCRIPT)
    profile = http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY")
    proc = standin.run(["claude", "--", "x"], UP_KEY="upkey", AGENTWRAP_PROFILE=str(profile), STANDIN_REQUEST_URL_FROM="ANTHROPIC_BASE_URL")
    assert proc.returncode == 0, proc.stderr
    assert len(up.requests) == 1


# -- user errors: one line, deliberate exit codes ------------------------------

def test_missing_agent_names_the_npm_package(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "agentwrap", "codex", "--", "exec", "x"], env=env, capture_output=True, text=True)
    assert proc.returncode == 127
    assert proc.stderr.strip().count("\n") == 0
    assert "@openai/codex" in proc.stderr


def test_invalid_toml_is_one_line_naming_file_and_line(standin, tmp_path):
    bad = write_profile(tmp_path / "bad.toml", '[backends.x]\nprotocol = "anthropic_messages"\nbase_url = \n')
    proc = standin.run(["claude", "--profile", str(bad), "--", "x"])
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and str(bad) in line and "line 3" in line
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[backends.x]\nprotocol = "anthropic"\nbase_url = "http://h"\n', "backends.x.protocol"),
        ('[backends.x]\nprotocol = "anthropic_messages"\n', "base_url"),
        ('[backends.x]\nprotocol = "anthropic_messages"\nbase_url = "http://h"\nbase_ur = "typo"\n', "backends.x.base_ur: unknown key"),
        ('[backends.x]\nprotocol = "anthropic_messages"\nbase_url = "http://h"\n[[routes]]\nbackend = "y"\n', "'y', which is not defined"),
    ],
)
def test_schema_errors_name_the_field(standin, tmp_path, text, expected):
    bad = write_profile(tmp_path / "bad.toml", text)
    proc = standin.run(["claude", "--profile", str(bad), "--", "x"])
    assert proc.returncode == 2
    assert expected in proc.stderr and str(bad) in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_unknown_profile_lists_known_ones(standin):
    proc = standin.run(["claude", "--profile", "nope", "--", "x"])
    assert proc.returncode == 2
    assert 'Profile "nope" not found' in proc.stderr and "offline" in proc.stderr


def test_backend_of_another_protocol_is_translated(standin, upstream_factory, tmp_path):
    """Claude Code's Anthropic request to an OpenAI Chat backend: translated both ways."""
    up = upstream_factory(TEXT_SCRIPT)
    prof = http_profile(tmp_path, "openai_chat", up.url + "/v1", api_key_env="UP_KEY")
    proc = standin.run(["claude", "--profile", str(prof), "--", "x"], UP_KEY="upkey-123456",
                       STANDIN_REQUEST_URL_FROM="ANTHROPIC_BASE_URL")
    assert proc.returncode == 0, proc.stderr
    reply = standin.record()["response"]
    assert reply["type"] == "message" and reply["content"][0]["text"] == "Hello from the scripted upstream."
    (req,) = up.requests
    assert req.path == "/v1/chat/completions" and req.headers["authorization"] == "Bearer upkey-123456"
    assert req.json["messages"][-1] == {"role": "user", "content": "hi"} or req.json["messages"][-1]["role"] == "user"


def test_missing_backend_key_is_a_config_error(standin, tmp_path):
    prof = http_profile(tmp_path, "anthropic_messages", "http://127.0.0.1:9", api_key_env="NOT_SET_ANYWHERE")
    proc = standin.run(["claude", "--profile", str(prof), "--", "x"])
    assert proc.returncode == 2 and "NOT_SET_ANYWHERE" in proc.stderr


def test_agent_options_before_the_separator_are_refused_clearly(standin):
    proc = standin.run(["claude", "-p", "hello"])
    assert proc.returncode == 2
    assert "after --" in proc.stderr


# -- zero-config pass-through to the real provider hosts --------------------------

@pytest.mark.parametrize(
    ("agent", "protocol", "key_var", "host", "auth_header", "path"),
    [
        ("claude", "anthropic", "ANTHROPIC_API_KEY", "api.anthropic.com", "x-api-key", "/v1/messages"),
        ("codex", "responses", "OPENAI_API_KEY", "api.openai.com", "authorization", "/v1/responses"),
        ("gemini", "gemini", "GEMINI_API_KEY", "generativelanguage.googleapis.com", "x-goog-api-key", "/v1beta/models/g:generateContent"),
    ],
)
def test_no_profile_goes_to_the_agents_own_provider(standin, tmp_path, agent, protocol, key_var, host, auth_header, path):
    """With no profile each agent reaches its provider's real host (over TLS, through
    HTTPS_PROXY here, since tests have no network) with the user's key from its usual variable."""
    import trustme

    from tests.support.upstream import ConnectProxy, ScriptedUpstream

    ca = trustme.CA()
    cert = ca.issue_cert(host)
    server_ctx = __import__("ssl").create_default_context(__import__("ssl").Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with ScriptedUpstream(TEXT_SCRIPT, ssl_context=server_ctx) as up, ConnectProxy(up.port) as proxy:
        proc = standin.run(
            [agent, "--", "x"],
            **{key_var: "user-key-123", "HTTPS_PROXY": proxy.url, "NO_PROXY": "", "SSL_CERT_FILE": str(ca_file),
               "STANDIN_PROTOCOL": protocol},
        )
    assert proc.returncode == 0, proc.stderr
    rec = standin.record()
    assert rec["status"] == 200, rec.get("response")
    assert proxy.targets == [f"{host}:443"]
    (req,) = up.requests
    assert req.path == path
    assert req.headers["host"] == host
    expected = "user-key-123" if auth_header != "authorization" else "Bearer user-key-123"
    assert req.headers[auth_header] == expected


def test_interactive_terminal_belongs_to_the_agent(standin):
    """In a real terminal the agent gets the tty on stdin/stdout/stderr, reads what the
    user types, and receives window-size changes (SIGWINCH goes to its process group)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))

    def take_terminal():  # runs after setsid(): make the pty our controlling terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen(
        [sys.executable, "-m", "agentwrap", "claude", "--", "x"],
        env=standin.env(STANDIN_MODE="tty"), stdin=slave, stdout=slave, stderr=slave,
        start_new_session=True, preexec_fn=take_terminal,
    )
    os.close(slave)
    try:
        rec = standin.wait_ready()
        assert rec["isatty"] == [True, True, True]
        assert rec["size"] == [80, 24]
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        deadline = time.monotonic() + 10
        while "winch" not in standin.record() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert standin.record().get("winch") == [120, 40]
        os.write(master, b"typed by the user\n")
        assert p.wait(15) == 0
        assert standin.record()["line"] == "typed by the user"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        try:
            while os.read(master, 65536):
                pass
        except OSError:
            pass
        os.close(master)


def test_project_file_picks_the_profile(standin, upstream_factory, tmp_path):
    """A `.agentwrap.toml` above the working directory chooses the profile per agent."""
    up = upstream_factory(TEXT_SCRIPT)
    project = tmp_path / "project"
    (project / "src" / "deep").mkdir(parents=True)
    (project / ".agentwrap.toml").write_text(
        f"""
[agents.claude]
profile = "team"

[profiles.team.backends.up]
protocol = "anthropic_messages"
base_url = "{up.url}"
api_key_env = "UP_KEY"
"""
    )
    proc = standin.run(["claude", "--", "x"], cwd=project / "src" / "deep", UP_KEY="upkey",
                       STANDIN_REQUEST_URL_FROM="ANTHROPIC_BASE_URL")
    assert proc.returncode == 0, proc.stderr
    assert standin.record()["response"]["content"][0]["text"] == "Hello from the scripted upstream."
    assert up.requests[0].headers["x-api-key"] == "upkey"


def test_profile_sets_claude_model_variables(standin, tmp_path):
    prof = write_profile(tmp_path / "m.toml", """
[backends.s]
type = "scripted"
script = "s.toml"

[agent_env.claude]
ANTHROPIC_DEFAULT_HAIKU_MODEL = "small-model"
CLAUDE_CODE_MAX_CONTEXT_TOKENS = "64000"
""")
    (tmp_path / "s.toml").write_text('[[turns]]\ntext = "x"\n')
    assert standin.run(["claude", "--profile", str(prof), "--", "x"]).returncode == 0
    env = standin.record()["env"]
    assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "small-model"
    assert env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "64000"
