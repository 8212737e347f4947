"""Shared by the doctor tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory that is its own git root, so parents are not scanned.

    Stand-in `claude`, `codex` and `gemini` scripts answer `--version` quickly; the real
    agents run in test_doctor_wire.py.
    """
    d = tmp_path / "work"
    (d / ".git").mkdir(parents=True)
    monkeypatch.chdir(d)
    bin_dir = tmp_path / "stand-in-bin"
    bin_dir.mkdir()
    for agent in ("claude", "codex", "gemini"):
        script = bin_dir / agent
        script.write_text(f"#!/bin/sh\necho '{agent} 0.0.1-stand-in'\n", encoding="utf-8")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    return d
