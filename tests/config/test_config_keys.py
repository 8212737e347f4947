"""Backend keys: api_key_env and api_key_cmd with real tiny shell commands."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agentwrap.config import BackendConfig, backend_key, load_profile, run_key_command
from agentwrap.errors import ConfigError


def env(**extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **extra}


def test_key_from_variable() -> None:
    b = BackendConfig(name="b", protocol="openai_chat", base_url="http://h/v1", api_key_env="MY_KEY")
    assert backend_key(b, env(MY_KEY="  sk-1  ")) == "sk-1"
    with pytest.raises(ConfigError) as err:
        backend_key(b, env(), source="/p.toml")
    assert 'Backend "b" in /p.toml needs the environment variable MY_KEY' in str(err.value)


def test_no_key_source_is_none() -> None:
    assert backend_key(BackendConfig(name="b", protocol="gemini", base_url="http://h"), env()) is None


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("echo sk-from-cmd", "sk-from-cmd"),
        ("printf 'sk-no-newline'", "sk-no-newline"),
        ("printf 'sk-crlf\\r\\n'", "sk-crlf"),
        ("echo $SECRET_SOURCE | tr a-z A-Z", "ABC"),  # a shell pipeline, with the given environment
    ],
)
def test_key_command_success(command: str, expected: str) -> None:
    assert run_key_command("b", command, env(SECRET_SOURCE="abc")) == expected


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        ("echo 'vault is locked' >&2; echo second >&2; exit 3", "failed (exit 3): vault is locked"),
        ("exit 1", "failed (exit 1): no message on stderr"),
        ("true", "printed nothing"),
        ("printf 'a\\nb\\n'", "more than one line"),
        ("definitely-not-a-command-agentwrap", "failed (exit 127)"),
    ],
)
def test_key_command_failure_is_one_line(command: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        run_key_command("vault", command, env())
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f'Backend "vault": api_key_cmd `{command}`')
    assert fragment in msg


def test_key_command_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    marker = tmp_path / "survived"
    # The shell forks a child that would outlive a plain kill of the shell and hold stdout open.
    command = f"(sleep 3; touch {marker}) & sleep 3; echo late"
    started = time.monotonic()
    with pytest.raises(ConfigError) as err:
        run_key_command("slow", command, env(), timeout_s=0.3)
    assert time.monotonic() - started < 2.5
    assert "did not finish within 0.3 s" in str(err.value) and "\n" not in str(err.value)
    time.sleep(3.2)
    assert not marker.exists()


def test_key_command_runs_only_when_asked(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "p.toml"
    path.write_text(
        f'[backends.b]\nprotocol = "openai_chat"\nbase_url = "http://127.0.0.1:9/v1"\napi_key_cmd = "touch {marker}; echo sk-${{WHO}}"\n',
        encoding="utf-8",
    )
    profile = load_profile(str(path), env=env(WHO="me"))
    assert not marker.exists(), "loading a profile must not run api_key_cmd"
    b = profile.backends["b"]
    assert b.has_key_source and b.api_key_cmd == f"touch {marker}; echo sk-me"
    assert backend_key(b, env()) == "sk-me"
    assert marker.exists()
