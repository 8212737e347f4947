"""A backend's API key: from an environment variable or from a command.

Does I/O: `api_key_cmd` runs a shell command (a password manager, a keychain
lookup). It runs only when a session uses the profile, never when profiles are
listed or shown, and under a timeout; the whole process group is killed when
the time runs out, so a command that forks cannot hold agentwrap open.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping

from agentwrap.config.model import BackendConfig
from agentwrap.errors import ConfigError

__all__ = ["API_KEY_CMD_TIMEOUT_S", "backend_key", "run_key_command"]

API_KEY_CMD_TIMEOUT_S = 30.0


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def run_key_command(backend: str, command: str, env: Mapping[str, str], *, timeout_s: float = API_KEY_CMD_TIMEOUT_S) -> str:
    """Run `command` with /bin/sh and return what it prints, trailing newline stripped.

    Raises ConfigError (one line, naming the backend and the command) when the
    command cannot start, fails, times out or prints nothing.
    """
    where = f'Backend "{backend}": api_key_cmd `{command}`'
    try:
        proc = subprocess.Popen(
            command,
            shell=True,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so a timeout kills what it started too
        )
    except OSError as exc:
        raise ConfigError(f"{where} could not start: {exc.strerror or exc}") from exc
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise ConfigError(f"{where} did not finish within {timeout_s:g} s; check that it runs without prompting") from None
    if proc.returncode != 0:
        detail = _first_line(err.decode("utf-8", "replace")) or "no message on stderr"
        raise ConfigError(f"{where} failed (exit {proc.returncode}): {detail}")
    key = out.decode("utf-8", "replace").strip()
    if not key:
        raise ConfigError(f"{where} printed nothing; it must print the key on stdout")
    if "\n" in key:
        raise ConfigError(f"{where} printed more than one line; it must print only the key")
    return key


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (OSError, AttributeError):
        proc.kill()
    proc.communicate()


def backend_key(backend: BackendConfig, env: Mapping[str, str], *, source: str = "", timeout_s: float = API_KEY_CMD_TIMEOUT_S) -> str | None:
    """The key agentwrap sends to `backend`, or None when the backend has no key source.

    `api_key_env` reads the variable (a missing or empty one is a ConfigError);
    `api_key_cmd` runs the command. `source` (the profile's file) makes messages point at it.
    """
    where = f" in {source}" if source else ""
    if backend.api_key_env:
        value = env.get(backend.api_key_env, "").strip()
        if not value:
            raise ConfigError(
                f'Backend "{backend.name}"{where} needs the environment variable {backend.api_key_env}, '
                f"which is not set. Export it, or change api_key_env."
            )
        return value
    if backend.api_key_cmd:
        return run_key_command(backend.name, backend.api_key_cmd, env, timeout_s=timeout_s)
    return None
