"""Nothing of the agent's process tree outlives a run, and a stuck agent is killed after
the documented grace period (5 s after a forwarded SIGTERM), not twice that."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from agentwrap.session.launch import KILL_GRACE_S

# A stand-in agent (installed as `claude`) that leaves processes behind: a plain child,
# a `setsid` child and a double-forked grandchild, each sleeping; it writes their pids
# to $PIDS_OUT and exits 0 (or, with STUCK=1, ignores SIGTERM and waits).
AGENT = r'''
import json, os, signal, subprocess, sys, time
pids = []
plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
pids.append(plain.pid)
detached = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
pids.append(detached.pid)
r, w = os.pipe()
if os.fork() == 0:  # double fork: the grandchild's parent exits at once
    os.close(r)
    if os.fork() == 0:
        os.setsid()
        os.write(w, str(os.getpid()).encode()); os.close(w)
        time.sleep(60); os._exit(0)
    os._exit(0)
os.close(w)
pids.append(int(os.read(r, 32))); os.close(r)
with open(os.environ["PIDS_OUT"], "w") as f:
    json.dump(pids, f)
if os.environ.get("STUCK"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(60)
'''


@pytest.fixture
def agent_env(tmp_path: Path, isolated_env: Path) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "claude"
    exe.write_text(f"#!{sys.executable}\n{AGENT}")
    exe.chmod(0o755)
    return {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "PIDS_OUT": str(tmp_path / "pids.json")}


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_children_of_an_agent_that_exits_on_its_own_do_not_outlive_the_run(agent_env, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "agentwrap", "claude", "--no-capture", "--", "x"],
                          env={**agent_env, "ANTHROPIC_API_KEY": "k"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    pids = json.loads((tmp_path / "pids.json").read_text())
    assert len(pids) == 3
    deadline = time.monotonic() + 2
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = [p for p in pids if _alive(p)]
    for p in survivors:
        os.kill(p, signal.SIGKILL)
    assert not survivors, "left running after agentwrap exited"


def test_a_stuck_agent_is_killed_one_grace_period_after_sigterm(agent_env, tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "agentwrap", "claude", "--no-capture", "--", "x"],
                         env={**agent_env, "ANTHROPIC_API_KEY": "k", "STUCK": "1"},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids_file = tmp_path / "pids.json"
    deadline = time.monotonic() + 30
    while not pids_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = json.loads(pids_file.read_text())
    started = time.monotonic()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    took = time.monotonic() - started
    assert p.returncode == 128 + signal.SIGKILL, err
    assert KILL_GRACE_S - 0.5 <= took <= KILL_GRACE_S + 2, f"exited {took:.1f} s after SIGTERM"
    time.sleep(0.3)
    survivors = [q for q in pids if _alive(q)]
    for q in survivors:
        os.kill(q, signal.SIGKILL)
    assert not survivors
