"""The agent's process: a loopback socket before it starts, its lifetime tied to ours,
signals forwarded, and nothing of its tree left running after the run.

Theory of operation.

- The agent is spawned with PR_SET_PDEATHSIG (it gets SIGTERM if agentwrap is
  SIGKILLed) and agentwrap makes itself a *child subreaper*
  (PR_SET_CHILD_SUBREAPER, Linux): a descendant whose parent exits is
  re-parented to agentwrap instead of init, double-forked and `setsid`
  processes included. So when the agent exits, whatever it left behind is
  still agentwrap's descendant and can be found and stopped (`reap_leftovers`:
  SIGTERM, then SIGKILL after `LEFTOVER_GRACE_S`). Orphans that exit during
  the run are reaped as they go (SIGCHLD), so they never pile up as zombies.
- Ctrl-C belongs to the agent (same process group, gets SIGINT from the
  terminal); agentwrap only ignores it. SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 sent
  to agentwrap alone are forwarded to the agent. After SIGTERM or SIGHUP the
  agent has `KILL_GRACE_S` to exit; then its whole tree (snapshot taken when
  the signal arrived, plus anything found later) is SIGKILLed: one grace
  period, not two.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading

__all__ = [
    "FORWARDED_SIGNALS",
    "KILL_GRACE_S",
    "LEFTOVER_GRACE_S",
    "SignalForwarder",
    "exit_code_of",
    "descendants_of",
    "kill_tree",
    "listen_loopback",
    "become_subreaper",
    "children_now",
    "reap_leftovers",
    "set_pdeathsig",
]

FORWARDED_SIGNALS = ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
KILL_GRACE_S = 5.0  # after a forwarded SIGTERM/SIGHUP, then SIGKILL
LEFTOVER_GRACE_S = 2.0  # for what the agent left running when it exited on its own
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except Exception:
        return False


def listen_loopback() -> socket.socket:
    """A listening socket on 127.0.0.1:<free port>, made with nothing but `socket`, so the
    agent can be spawned before asyncio and h11 are even imported."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    sock.setblocking(False)
    return sock


def set_pdeathsig() -> None:
    """Runs in the child between fork and exec: SIGTERM when agentwrap dies."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def become_subreaper() -> bool:
    """Make orphaned descendants ours (Linux); False where the kernel has no such thing."""
    return sys.platform.startswith("linux") and _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def children_now() -> set[int]:
    """Our child pids, read from /proc without psutil (it stays off the start-to-exec path)."""
    pids: set[int] = set()
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as f:
                pids.update(int(p) for p in f.read().split())
    except OSError:
        pass
    return pids


def exit_code_of(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _kill(procs: list, sig: str) -> None:
    import psutil

    for p in procs:
        try:
            getattr(p, sig)()
        except psutil.Error:
            pass


def descendants_of(pid: int) -> list[int]:
    """`pid`'s descendants, read from /proc (no psutil: this runs in a signal handler)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def kill_tree(pid: int, descendants: list[int] | None = None) -> None:
    """SIGKILL the agent and its tree (after its grace period ran out)."""
    for p in dict.fromkeys([pid, *descendants_of(pid), *(descendants or [])]):
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def _orphans(exclude: set[int]) -> list:
    """Our descendants that are not in `exclude` (what the agent left behind)."""
    import psutil

    try:
        return [p for p in psutil.Process().children(recursive=True) if p.pid not in exclude]
    except psutil.Error:
        return []


def reap_leftovers(exclude: set[int], grace_s: float = LEFTOVER_GRACE_S) -> int:
    """Stop whatever the agent left running: SIGTERM, SIGKILL after `grace_s`. Returns how many."""
    import psutil

    left = [p for p in _orphans(exclude) if p.status() != psutil.STATUS_ZOMBIE]
    if left:
        _kill(left, "terminate")
        _, alive = psutil.wait_procs(left, timeout=grace_s)
        _kill(alive, "kill")
        psutil.wait_procs(alive, timeout=1)
    _reap_zombies(exclude)
    return len(left)


def _reap_zombies(exclude: set[int]) -> None:
    """waitpid(WNOHANG) each child of ours not in `exclude` (a live one is left alone). Safe in a
    signal handler: no imports, no psutil (the main thread may be half-way through importing it)."""
    for pid in children_now() - exclude:
        try:
            os.waitpid(pid, os.WNOHANG)
        except OSError:
            pass


class SignalForwarder:
    """Forward termination signals to the agent; Ctrl-C belongs to the agent.

    SIGINT from the terminal reaches the whole foreground process group, the
    agent included, so agentwrap only ignores it (with a Python handler, not
    SIG_IGN, which the child would inherit). Signals sent to agentwrap alone
    (SIGTERM, SIGHUP, ...) are forwarded; if the agent does not exit within
    `KILL_GRACE_S` after SIGTERM or SIGHUP, its whole process tree is killed.

    Installed *before* the agent is spawned (Python handlers do not survive
    exec in the child), so a signal that arrives while the proxy is still
    being built is held and delivered as soon as the agent exists, instead of
    killing agentwrap with the default action. `exclude` holds the pids that
    were our children before the agent (never reaped nor killed here).
    """

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.exclude: set[int] = set()
        self._pending: list[int] = []
        self._killer: tuple | None = None
        self._previous: dict = {}

    def install(self) -> None:
        for name in ("SIGINT", *FORWARDED_SIGNALS):
            sig = getattr(signal, name, None)
            if sig is not None:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        if hasattr(signal, "SIGCHLD"):
            self._previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, self._on_child)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def attach(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        pending, self._pending = self._pending, []
        for signum in pending:
            self._forward(signum)

    def _on_child(self, signum, frame) -> None:  # noqa: ARG002
        # An orphan re-parented to us exited: reap it (never the agent: Popen.wait owns it).
        if self.proc is not None:
            try:
                _reap_zombies(self.exclude | {self.proc.pid})
            except Exception:  # a signal handler must never raise into the code it interrupted
                pass

    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        if signum == signal.SIGINT:
            return
        if self.proc is None:
            self._pending.append(signum)
        else:
            self._forward(signum)

    def _forward(self, signum: int) -> None:
        proc = self.proc
        assert proc is not None
        if signum in (signal.SIGTERM, signal.SIGHUP) and self._killer is None:
            # Snapshot the tree now: once the agent exits its children are re-parented.
            tree = descendants_of(proc.pid)
            timer = threading.Timer(KILL_GRACE_S, kill_tree, args=(proc.pid, tree))
            timer.daemon = True
            timer.start()
            self._killer = (timer, tree)
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass

    def wait(self) -> int:
        """Wait for the agent; then stop whatever of its tree is still running."""
        assert self.proc is not None
        returncode = self.proc.wait()
        if self._killer is not None:
            timer, tree = self._killer
            timer.cancel()
            for p in tree:  # what of the tree is left gets no second grace (the agent itself is reaped)
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        reap_leftovers(self.exclude | {self.proc.pid})
        return returncode
