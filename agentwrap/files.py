"""Files only the user can read: one home for how agentwrap creates what it writes.

Everything agentwrap writes (capture bundles, the runs index, HTML pages,
profiles, the agents' wiring files) may hold prompts, answers or settings;
it is created 0600 in directories created 0700, whatever the umask. The
functions here raise `OSError`; each caller turns that into its own message.
"""

from __future__ import annotations

import os

__all__ = ["make_private_dirs", "open_private", "write_all", "write_private"]

_NOINHERIT = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def make_private_dirs(directory: str | os.PathLike) -> None:
    """Create missing directories 0700; directories that exist are left as they are."""
    missing = []
    d = os.path.abspath(directory)
    while not os.path.isdir(d):
        missing.append(d)
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)  # the umask may have taken bits the mode asked for; 0700 is what we want


def open_private(path: str | os.PathLike, *, exclusive: bool = False, append: bool = False) -> int:
    """Open `path` for writing, created 0600 (its missing directories 0700); return the descriptor.

    `exclusive`: never open a file that exists (`FileExistsError`). `append`:
    every write goes to the end; otherwise an existing file is truncated.
    """
    flags = os.O_WRONLY | os.O_CREAT | _NOINHERIT
    flags |= os.O_EXCL if exclusive else 0
    flags |= os.O_APPEND if append else (0 if exclusive else os.O_TRUNC)
    make_private_dirs(os.path.dirname(os.path.abspath(path)))
    fd = os.open(path, flags, 0o600)
    if hasattr(os, "fchmod"):
        try:
            os.fchmod(fd, 0o600)  # a file that existed keeps its old mode otherwise
        except OSError:
            os.close(fd)
            raise
    return fd


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """`os.write` until all of `data` is written."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_private(path: str | os.PathLike, text: str, *, exclusive: bool = False) -> None:
    """Write `text` (UTF-8) to `path` as a file only the user can read; see `open_private`."""
    fd = open_private(path, exclusive=exclusive)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
