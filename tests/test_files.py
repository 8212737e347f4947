"""agentwrap/files.py: what agentwrap writes is the user's alone, whatever the umask or what was there."""

from __future__ import annotations

import os
import stat

import pytest

from agentwrap.files import open_private, write_all, write_private


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_and_its_new_directories_are_private_under_an_open_umask(tmp_path) -> None:
    os.chmod(tmp_path, 0o755)
    old = os.umask(0)
    try:
        target = tmp_path / "a" / "b" / "page.html"
        write_private(target, "héllo")
    finally:
        os.umask(old)
    assert target.read_text(encoding="utf-8") == "héllo"
    assert _mode(target) == 0o600
    assert _mode(tmp_path / "a") == 0o700 and _mode(tmp_path / "a" / "b") == 0o700
    assert _mode(tmp_path) == 0o755  # a directory that existed is left as it was


def test_an_existing_readable_file_is_truncated_and_made_private(tmp_path) -> None:
    target = tmp_path / "out.html"
    target.write_text("x" * 100)
    os.chmod(target, 0o644)
    write_private(target, "short")
    assert target.read_text() == "short" and _mode(target) == 0o600


def test_exclusive_never_overwrites(tmp_path) -> None:
    target = tmp_path / "profile.toml"
    target.write_text("mine")
    with pytest.raises(FileExistsError):
        write_private(target, "theirs", exclusive=True)
    assert target.read_text() == "mine"


def test_append_keeps_what_is_there_and_write_all_writes_everything(tmp_path) -> None:
    target = tmp_path / "run.cbor"
    fd = open_private(target, exclusive=True, append=True)
    try:
        write_all(fd, b"a" * 300_000)
        write_all(fd, memoryview(b"bc"))
    finally:
        os.close(fd)
    data = target.read_bytes()
    assert len(data) == 300_002 and data.endswith(b"abc")
