"""Drive a real agent's TUI in a real terminal: a private tmux server per test.

tmux is the terminal emulator (the agents query the terminal and expect
answers: cursor position, colours, keyboard modes; tmux gives them all), on
a socket of the test's own, so nothing else's tmux is touched. The pane
stays after its process exits (`remain-on-exit`), so the test reads what
agentwrap printed last and the exit status. Every wait polls the screen
with a deadline; nothing sleeps for a fixed time to let an agent catch up.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["Terminal", "TMUX"]

TMUX = shutil.which("tmux")
_CONF = """\
set -g remain-on-exit on
set -g history-limit 20000
set -g focus-events on
set -s escape-time 0
set -g default-terminal "{term}"
set -g status off
"""


def _term() -> str:
    """tmux's own terminal type when this system knows it, else the older screen one."""
    dirs = ("/usr/share/terminfo", "/lib/terminfo", "/etc/terminfo")
    return "tmux-256color" if any(os.path.exists(f"{d}/t/tmux-256color") for d in dirs) else "screen-256color"


class Terminal:
    """One tmux session running `argv` in a `width` x `height` terminal."""

    def __init__(self, tmp_path: Path, env: Mapping[str, str], cwd: Path, *, width: int = 200, height: int = 50) -> None:
        assert TMUX, "tmux is missing: apt-get install tmux (the CI script installs it)"
        self.socket = str(tmp_path / "tmux.sock")
        self.conf = tmp_path / "tmux.conf"
        self.conf.write_text(_CONF.format(term=_term()))
        self.env = dict(env)
        self.cwd = cwd
        self.size = (width, height)
        self.started = False

    def _tmux(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run([TMUX, "-S", self.socket, "-f", str(self.conf), *args], env=self.env,
                              capture_output=True, text=True, timeout=30)
        if check and proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def start(self, argv: list[str]) -> None:
        width, height = self.size
        self._tmux("new-session", "-d", "-s", "main", "-x", str(width), "-y", str(height), "-c", str(self.cwd), "--", *argv)
        self.started = True

    def screen(self, *, history: bool = False) -> str:
        """What the terminal shows (wrapped lines joined); with `history`, the scrollback too."""
        return self._tmux("capture-pane", "-p", "-J", "-t", "main", *(["-S", "-"] if history else []))

    def wait_for(self, pattern: str, *, timeout: float = 45.0, history: bool = False, regex: bool = False) -> str:
        """The screen once it shows `pattern` (text, or a regex with `regex`); AssertionError naming
        what it showed instead after `timeout` seconds."""
        found = re.compile(pattern) if regex else None
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen(history=history)
            if (found.search(text) if found else pattern in text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"the terminal never showed {pattern!r} within {timeout:.0f} s; it shows:\n{text}")
            time.sleep(0.2)

    def type(self, text: str) -> None:
        """Type `text` literally (no key names)."""
        self._tmux("send-keys", "-t", "main", "-l", text)

    def press(self, key: str) -> None:
        self._tmux("send-keys", "-t", "main", key)

    def submit(self, text: str, *, shown: str | None = None, timeout: float = 30.0) -> None:
        """Type `text`, wait until the input line shows it, then press Enter. A pause between
        the two: the TUIs take a burst of keys followed at once by Enter for a paste, and a
        pasted Enter is a new line, not a submission."""
        self.type(text)
        self.wait_for(shown or text, timeout=timeout)
        time.sleep(0.5)
        self.press("Enter")

    def exit_status(self) -> int | None:
        """The exit status of the pane's process, None while it runs."""
        dead, _, status = self._tmux("display-message", "-p", "-t", "main", "#{pane_dead} #{pane_dead_status}").strip().partition(" ")
        return int(status) if dead == "1" and status else None

    def wait_exit(self, *, timeout: float = 45.0) -> int:
        deadline = time.monotonic() + timeout
        while (status := self.exit_status()) is None:
            if time.monotonic() > deadline:
                pid = self._tmux("display-message", "-p", "-t", "main", "#{pane_pid}").strip()
                tree = subprocess.run(["ps", "-o", "pid,stat,etime,args", "--ppid", pid, "-p", pid], capture_output=True, text=True).stdout
                raise AssertionError(f"the program did not exit within {timeout:.0f} s; processes:\n{tree}\nit shows:\n"
                                     f"{self.screen(history=True)}")
            time.sleep(0.2)
        return status

    def close(self) -> None:
        """Stop this test's tmux server (and with it whatever still runs in its pane)."""
        if self.started:
            self._tmux("kill-server", check=False)
            self.started = False
