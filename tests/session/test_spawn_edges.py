"""Spawn edge cases that a real process cannot easily produce (pytest-subprocess)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentwrap.cli import run_agent


@pytest.fixture
def fake_claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "claude"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return str(exe)


def test_fork_failure_is_one_line_and_exit_1(fake_claude, capsys, monkeypatch):
    import subprocess

    def fail(*args, **kwargs):
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", fail)  # fork() failing: out of processes
    code = run_agent("claude", ["-p", "x"], None, quiet=True)
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("agentwrap: cannot start") and "Resource temporarily unavailable" in err
    assert err.count("\n") == 1


def test_agent_killed_by_sigkill_maps_to_137(fp, fake_claude, capsys):
    fp.register([fake_claude, fp.any()], returncode=-9)
    assert run_agent("claude", ["x"], None, quiet=False) == 137
    assert "claude exited 137" in capsys.readouterr().err


def test_unexecutable_binary_is_a_clear_error(tmp_path, monkeypatch, capsys):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "gemini"
    exe.write_text("#!/nonexistent/interpreter\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    assert run_agent("gemini", [], None, quiet=True) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"agentwrap: cannot start {exe}") and "Traceback" not in err
