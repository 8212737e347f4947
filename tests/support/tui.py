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
import shlex
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


_CI_MARKERS = frozenset({"CI", "GITHUB_ACTIONS", "CONTINUOUS_INTEGRATION", "BUILD_NUMBER", "RUN_ID"})


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
        # A person at a terminal: the CI markers of the machine running the tests would make
        # Gemini CLI headless ("No input provided via stdin") however real the terminal is.
        self.env = {k: v for k, v in env.items() if k not in _CI_MARKERS}
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
        """Run `argv` in the terminal. A shell around it writes its exit status to a file: the
        pane's own death is not waited for, since tmux marks a pane dead only once nothing
        holds its terminal open any more."""
        width, height = self.size
        self.status_file = self.cwd.parent / "tui-exit-status"
        self.status_file.unlink(missing_ok=True)
        script = f'"$@"; echo $? > {shlex.quote(str(self.status_file))}'
        self._tmux("new-session", "-d", "-s", "main", "-x", str(width), "-y", str(height), "-c", str(self.cwd), "--",
                   "sh", "-c", script, "sh", *argv)
        self.pid = int(self._tmux("display-message", "-p", "-t", "main", "#{pane_pid}").strip())
        self.started = True

    def screen(self, *, history: bool = False) -> str:
        """What the terminal shows (wrapped lines joined); with `history`, the scrollback too."""
        return self._tmux("capture-pane", "-p", "-J", "-t", "main", *(["-S", "-"] if history else []))

    def wait_for(self, pattern: str, *, timeout: float = 45.0, history: bool = False, regex: bool = False,
                 count: int = 1, nudge_s: float | None = None) -> str:
        """The screen once it shows `pattern` (text, or a regex with `regex`) `count` times;
        AssertionError naming what it showed instead after `timeout` seconds. With `nudge_s`,
        Enter is pressed again every so many seconds meanwhile (a TUI busy drawing a
        completion list may drop a key; Enter on an empty input line does nothing)."""
        found = re.compile(pattern if regex else re.escape(pattern))
        deadline = time.monotonic() + timeout
        nudge = time.monotonic() + nudge_s if nudge_s else None
        while True:
            text = self.screen(history=history)
            if len(found.findall(text)) >= count:
                return text
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(f"the terminal never showed {pattern!r} within {timeout:.0f} s; it shows:\n{text}")
            if nudge is not None and now > nudge:
                self.press("Enter")
                nudge = now + nudge_s
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
        """The exit status of the program, None while it runs."""
        try:
            text = self.status_file.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text else None

    def wait_exit(self, *, timeout: float = 45.0, nudge_s: float | None = None) -> int:
        """The program's exit status once it has exited (`nudge_s`: as in `wait_for`)."""
        deadline = time.monotonic() + timeout
        nudge = time.monotonic() + nudge_s if nudge_s else None
        while (status := self.exit_status()) is None:
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(f"the program did not exit within {timeout:.0f} s; processes on its terminal (pid ppid stat):\n"
                                     f"{self.processes()}\nit shows:\n{self.screen(history=True)}")
            if nudge is not None and now > nudge:
                self.press("Enter")
                nudge = now + nudge_s
            time.sleep(0.2)
        return status

    def leftovers(self, *, timeout: float = 10.0) -> str:
        """`ps` of what still runs of the terminal's session once the program has exited, after
        up to `timeout` seconds for it to go ("" when nothing does)."""
        deadline = time.monotonic() + timeout
        while listing := self.processes():
            if time.monotonic() > deadline:
                return listing
            time.sleep(0.2)
        return ""

    def processes(self) -> str:
        """The processes of the terminal's session (its first process leads it; what an agent
        leaves behind keeps the session unless it made its own), one `ps` line each."""
        out = subprocess.run(["ps", "-e", "-o", "sid=,pid=,ppid=,stat=,etime=,args="], capture_output=True, text=True).stdout
        return "".join(line.split(None, 1)[1] + "\n" for line in out.splitlines()
                       if line.split(None, 1)[0] == str(self.pid) and "Z" not in line.split()[3])

    def close(self) -> None:
        """Stop this test's tmux server (and with it whatever still runs in its pane)."""
        if self.started:
            self._tmux("kill-server", check=False)
            self.started = False
